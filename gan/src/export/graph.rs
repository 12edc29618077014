//! A small ONNX graph builder: values are named strings, each method appends one node (or a
//! few, for a layer ONNX has no single operator for) and returns the name of its output.
//!
//! The layer methods read their weights by gantry's parameter names from a state dict, so a
//! model's exporter is the model's forward pass written once more against this builder.

use super::ExportError;
use super::proto::{
    AttributeProto, Dimension, DimensionValue, GraphProto, NodeProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto, attribute_type, data_type,
};
use gantry_tensor::Tensor;
use std::collections::HashMap;

/// A dimension of a graph input or output: fixed, or the symbolic batch size `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The batch size, left free (`dim_param "N"`).
    Batch,
    /// A fixed size.
    Fixed(usize),
}

/// How batch normalisation is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NormStats {
    /// `BatchNormalization` with the running statistics (PyTorch's `eval()`).
    Running,
    /// Each batch normalised with its own mean and biased variance (PyTorch's `train()`),
    /// written as reductions, since `BatchNormalization`'s training mode also outputs updated
    /// running statistics that an inference graph has no use for.
    Batch,
}

/// The graph under construction and the weights it may read.
pub(crate) struct Graph<'w> {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    weights: &'w HashMap<String, Tensor>,
    used: std::collections::HashSet<String>,
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: attribute_type::FLOAT,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: ints.to_vec(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

fn value_info(name: &str, elem_type: i32, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Batch => DimensionValue::DimParam("N".into()),
                Dim::Fixed(n) => DimensionValue::DimValue(*n as i64),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: String::new(),
    }
}

/// Settings of a (transposed) convolution: square kernel, equal padding on every side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvSpec {
    pub stride: usize,
    pub padding: usize,
    pub output_padding: usize,
}

impl ConvSpec {
    pub(crate) fn new(stride: usize, padding: usize) -> Self {
        ConvSpec {
            stride,
            padding,
            output_padding: 0,
        }
    }
}

impl<'w> Graph<'w> {
    /// An empty graph reading its weights from `weights` (gantry names).
    pub(crate) fn new(weights: &'w HashMap<String, Tensor>) -> Self {
        Graph {
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            weights,
            used: Default::default(),
        }
    }

    /// Declares a float input.
    pub(crate) fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, data_type::FLOAT, dims));
        name.into()
    }

    /// Declares an int64 input.
    pub(crate) fn input_i64(&mut self, name: &str, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, data_type::INT64, dims));
        name.into()
    }

    /// Makes `value` the float output called `name`.
    pub(crate) fn output(&mut self, value: &str, name: &str, dims: &[Dim]) {
        self.push_node("Identity", &[value], vec![], Some(name.to_string()));
        self.outputs.push(value_info(name, data_type::FLOAT, dims));
    }

    /// The finished graph, or the first weight nobody read (a sign that the exporter and the
    /// model disagree about the architecture).
    pub(crate) fn finish(self, name: &str, doc: &str) -> Result<GraphProto, ExportError> {
        let mut unused: Vec<&String> = self
            .weights
            .keys()
            .filter(|k| !self.used.contains(*k))
            .collect();
        unused.sort();
        if let Some(k) = unused.first() {
            return Err(ExportError::Architecture(format!(
                "parameter {k} is not part of the exported graph"
            )));
        }
        Ok(GraphProto {
            node: self.nodes,
            name: name.into(),
            initializer: self.initializers,
            doc_string: doc.into(),
            input: self.inputs,
            output: self.outputs,
        })
    }

    fn push_node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
        output: Option<String>,
    ) -> String {
        let n = self.nodes.len();
        let out = output.unwrap_or_else(|| format!("{}_{n}", op.to_lowercase()));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: format!("{op}_{n}"),
            op_type: op.into(),
            attribute,
        });
        out
    }

    /// Appends `op` on `inputs` with `attrs`; returns its output.
    pub(crate) fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.push_node(op, inputs, attrs, None)
    }

    /// A float constant called `name`, shaped `shape`.
    fn constant(&mut self, name: &str, shape: &[usize], data: &[f32]) -> String {
        self.initializers.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            name: name.into(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name.into()
    }

    /// An int64 constant (shapes for `Reshape`), named after the node count.
    fn constant_i64(&mut self, data: &[i64]) -> String {
        let name = format!("const_{}", self.initializers.len());
        self.initializers.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: data_type::INT64,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// The weight called `name`, read from the state dict.
    fn weight(&mut self, name: &str) -> Result<&'w Tensor, ExportError> {
        let t = self.weights.get(name).ok_or_else(|| {
            ExportError::Architecture(format!("the generator has no parameter {name}"))
        })?;
        self.used.insert(name.to_string());
        Ok(t)
    }

    /// The weight called `name` as an initializer of the same name.
    fn weight_init(&mut self, name: &str) -> Result<String, ExportError> {
        let t = self.weight(name)?;
        Ok(self.constant(name, t.shape(), &t.to_vec()))
    }

    /// Whether the state dict holds `name` (an optional bias).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.weights.contains_key(name)
    }

    /// `Conv` with `{prefix}.weight` and, if present, `{prefix}.bias`.
    pub(crate) fn conv(
        &mut self,
        x: &str,
        prefix: &str,
        s: ConvSpec,
    ) -> Result<String, ExportError> {
        self.conv_op("Conv", x, prefix, s)
    }

    /// `ConvTranspose` with `{prefix}.weight` and, if present, `{prefix}.bias`.
    pub(crate) fn conv_transpose(
        &mut self,
        x: &str,
        prefix: &str,
        s: ConvSpec,
    ) -> Result<String, ExportError> {
        self.conv_op("ConvTranspose", x, prefix, s)
    }

    fn conv_op(
        &mut self,
        op: &str,
        x: &str,
        prefix: &str,
        s: ConvSpec,
    ) -> Result<String, ExportError> {
        let w = self.weight_init(&format!("{prefix}.weight"))?;
        let k = self.weights[&w].shape()[2] as i64;
        let bias_name = format!("{prefix}.bias");
        let b = if self.has(&bias_name) {
            Some(self.weight_init(&bias_name)?)
        } else {
            None
        };
        let p = s.padding as i64;
        let mut attrs = vec![
            attr_ints("kernel_shape", &[k, k]),
            attr_ints("strides", &[s.stride as i64; 2]),
            attr_ints("pads", &[p, p, p, p]),
        ];
        if s.output_padding > 0 {
            attrs.push(attr_ints("output_padding", &[s.output_padding as i64; 2]));
        }
        let mut inputs = vec![x, w.as_str()];
        if let Some(b) = &b {
            inputs.push(b);
        }
        Ok(self.node(op, &inputs, attrs))
    }

    /// `x W^T (+ b)` with PyTorch's `[out, in]` weight `{prefix}.weight`.
    pub(crate) fn linear(&mut self, x: &str, prefix: &str) -> Result<String, ExportError> {
        let w = self.weight_init(&format!("{prefix}.weight"))?;
        let bias_name = format!("{prefix}.bias");
        if self.has(&bias_name) {
            let b = self.weight_init(&bias_name)?;
            Ok(self.node("Gemm", &[x, &w, &b], vec![attr_int("transB", 1)]))
        } else {
            Ok(self.node("Gemm", &[x, &w], vec![attr_int("transB", 1)]))
        }
    }

    /// Batch normalisation over axis 1 of a rank-`rank` value with `{prefix}.weight`, `.bias`,
    /// `.running_mean` and `.running_var`.
    pub(crate) fn batch_norm(
        &mut self,
        x: &str,
        prefix: &str,
        eps: f32,
        rank: usize,
        stats: NormStats,
    ) -> Result<String, ExportError> {
        let names =
            ["weight", "bias", "running_mean", "running_var"].map(|n| format!("{prefix}.{n}"));
        match stats {
            NormStats::Running => {
                let [g, b, m, v] = names;
                let g = self.weight_init(&g)?;
                let b = self.weight_init(&b)?;
                let m = self.weight_init(&m)?;
                let v = self.weight_init(&v)?;
                Ok(self.node(
                    "BatchNormalization",
                    &[x, &g, &b, &m, &v],
                    vec![attr_float("epsilon", eps)],
                ))
            }
            NormStats::Batch => {
                // The running statistics are not used; mark them read so that `finish` does
                // not take them for a forgotten layer.
                self.weight(&names[2])?;
                self.weight(&names[3])?;
                let axes: Vec<i64> = std::iter::once(0).chain(2..rank as i64).collect();
                let reduce = |g: &mut Self, v: &str| {
                    g.node(
                        "ReduceMean",
                        &[v],
                        vec![attr_ints("axes", &axes), attr_int("keepdims", 1)],
                    )
                };
                let mean = reduce(self, x);
                let centred = self.node("Sub", &[x, &mean], vec![]);
                let square = self.node("Mul", &[&centred, &centred], vec![]);
                let var = reduce(self, &square);
                let eps = self.constant(&format!("{prefix}.eps"), &[], &[eps]);
                let var_eps = self.node("Add", &[&var, &eps], vec![]);
                let std = self.node("Sqrt", &[&var_eps], vec![]);
                let normed = self.node("Div", &[&centred, &std], vec![]);
                // γ and β broadcast as [C, 1, 1] against [N, C, H, W] (as [C] against [N, C]).
                let mut shape = vec![1usize; rank - 1];
                let mut affine = |g: &mut Self, name: &str| -> Result<String, ExportError> {
                    let t = g.weight(name)?;
                    shape[0] = t.len();
                    let data = t.to_vec();
                    Ok(g.constant(name, &shape, &data))
                };
                let gamma = affine(self, &names[0])?;
                let beta = affine(self, &names[1])?;
                let scaled = self.node("Mul", &[&normed, &gamma], vec![]);
                Ok(self.node("Add", &[&scaled, &beta], vec![]))
            }
        }
    }

    /// `ReLU`.
    pub(crate) fn relu(&mut self, x: &str) -> String {
        self.node("Relu", &[x], vec![])
    }

    /// `LeakyRelu` with negative slope `alpha`.
    pub(crate) fn leaky_relu(&mut self, x: &str, alpha: f32) -> String {
        self.node("LeakyRelu", &[x], vec![attr_float("alpha", alpha)])
    }

    /// `Tanh`.
    pub(crate) fn tanh(&mut self, x: &str) -> String {
        self.node("Tanh", &[x], vec![])
    }

    /// `Reshape` to `shape` (`-1` infers a dimension, `0` copies the input's).
    pub(crate) fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.constant_i64(shape);
        self.node("Reshape", &[x, &s], vec![])
    }

    /// `Concat` along `axis`.
    pub(crate) fn concat(&mut self, xs: &[&str], axis: i64) -> String {
        self.node("Concat", xs, vec![attr_int("axis", axis)])
    }

    /// Rows of the table `{name}` picked by the int64 indices `idx` (`Gather` on axis 0).
    pub(crate) fn embedding(&mut self, idx: &str, name: &str) -> Result<String, ExportError> {
        let w = self.weight_init(name)?;
        Ok(self.node("Gather", &[&w, idx], vec![attr_int("axis", 0)]))
    }
}
