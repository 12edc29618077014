//! State dicts and optimizer state in safetensors files: bit-exact round trips, clear errors
//! naming the key or the file, strict loads that change nothing on failure, renaming, and
//! resuming an optimizer on a rebuilt model.

use gantry_autodiff::{Reduction, Tape};
use gantry_nn::optim::{AdamConfig, Optimizer, SgdConfig};
use gantry_nn::state_dict::{
    LoadOptions, LoadReport, load, read_safetensors, save, state_dict, write_safetensors,
};
use gantry_nn::{
    BatchNormConfig, Conv2dConfig, Flatten, LeakyReLU, LinearConfig, Mode, Module, NnError,
    Sequential, loss,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Conv -> BatchNorm -> LeakyReLU -> Flatten -> Linear on `[N, 3, 4, 4]`: names `0.weight`,
/// `0.bias`, `1.{weight,bias,running_mean,running_var}`, `4.weight`, `4.bias`.
fn model(seed: u64, outputs: usize) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .add(
            Conv2dConfig::new(3, 4, 3)
                .padding(1)
                .build(&mut rng)
                .unwrap(),
        )
        .add(BatchNormConfig::new(4).build().unwrap())
        .add(LeakyReLU::new(0.2))
        .add(Flatten)
        .add(LinearConfig::new(64, outputs).build(&mut rng).unwrap())
}

/// A deterministic batch: inputs and regression targets.
fn batch(i: u64) -> (Tensor, Tensor) {
    let mut rng = StdRng::seed_from_u64(1000 + i);
    (
        Tensor::randn(&[5, 3, 4, 4], 0.0, 1.0, &mut rng),
        Tensor::randn(&[5, 2], 0.0, 1.0, &mut rng),
    )
}

/// One training step (which also moves the batch-norm running statistics).
fn train_step(m: &Sequential, opt: &mut dyn Optimizer, i: u64) {
    let (x, y) = batch(i);
    let tape = Tape::new();
    let out = m.forward(tape.constant(x), Mode::Train);
    let l = loss::mse(out, &y, Reduction::Mean);
    opt.step(m, &l.backward()).unwrap();
}

/// Every parameter and buffer as raw bits, by name.
fn bits(m: &dyn Module) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    state_dict(m)
        .into_iter()
        .map(|(n, t)| {
            let b = t.to_vec().iter().map(|v| v.to_bits()).collect();
            (n, t.shape().to_vec(), b)
        })
        .collect()
}

fn strict() -> LoadOptions<'static> {
    LoadOptions {
        strict: true,
        rename: None,
    }
}

fn message(e: NnError) -> String {
    e.to_string()
}

#[test]
fn save_load_round_trip_is_bit_exact_after_training() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let a = model(1, 2);
    let mut opt = AdamConfig::default().build();
    for i in 0..2 {
        train_step(&a, &mut opt, i);
    }
    let fresh = model(1, 2);
    assert_ne!(
        bits(&a),
        bits(&fresh),
        "training moved weights and statistics"
    );
    save(&a, &path).unwrap();

    let b = model(2, 2);
    assert_ne!(bits(&a), bits(&b));
    let report = load(&b, &path, &strict()).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(bits(&a), bits(&b));

    // PyTorch's names, buffers included, and nothing else.
    let mut names: Vec<String> = read_safetensors(&path)
        .unwrap()
        .tensors
        .into_keys()
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "0.bias",
            "0.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "1.weight",
            "4.bias",
            "4.weight"
        ]
    );

    // The same function: identical outputs in evaluation mode (running statistics in use).
    let (x, _) = batch(7);
    let run = |m: &Sequential| {
        let tape = Tape::new();
        m.forward(tape.constant(x.clone()), Mode::Eval).value()
    };
    assert_eq!(run(&a).to_vec(), run(&b).to_vec());

    // Written atomically: no temporary file left beside it.
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "only the file itself: {entries:?}");
}

#[test]
fn metadata_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.safetensors");
    let meta = BTreeMap::from([("config".to_string(), r#"{"nz":100}"#.to_string())]);
    let t = Tensor::from_vec(&[2, 2], vec![1.0, -0.0, f32::MIN_POSITIVE, 3.5]);
    write_safetensors(&path, &[("t".into(), t.clone())], &meta).unwrap();
    let file = read_safetensors(&path).unwrap();
    assert_eq!(file.metadata, meta);
    let back = &file.tensors["t"];
    assert_eq!(back.shape(), &[2, 2]);
    let b: Vec<u32> = back.to_vec().iter().map(|v| v.to_bits()).collect();
    let want: Vec<u32> = t.to_vec().iter().map(|v| v.to_bits()).collect();
    assert_eq!(b, want);
}

#[test]
fn other_dtypes_are_converted_to_f32() {
    use safetensors::{Dtype, tensor::TensorView};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dtypes.safetensors");
    let f64s: Vec<u8> = [1.5f64, -2.25]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    // 1.0, -2.0, 0.5 and the smallest subnormal in half precision.
    let f16s: Vec<u8> = [0x3c00u16, 0xc000, 0x3800, 0x0001]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    // bfloat16 is the top half of an f32.
    let bf16s: Vec<u8> = [3.0f32, -0.75]
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect();
    let i64s: Vec<u8> = [7i64, -3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        ("d", TensorView::new(Dtype::F64, vec![2], &f64s).unwrap()),
        ("h", TensorView::new(Dtype::F16, vec![2, 2], &f16s).unwrap()),
        ("b", TensorView::new(Dtype::BF16, vec![2], &bf16s).unwrap()),
        ("i", TensorView::new(Dtype::I64, vec![2], &i64s).unwrap()),
    ];
    safetensors::serialize_to_file(views, None, &path).unwrap();
    let file = read_safetensors(&path).unwrap();
    assert_eq!(file.tensors["d"].to_vec(), vec![1.5, -2.25]);
    assert_eq!(
        file.tensors["h"].to_vec(),
        vec![1.0, -2.0, 0.5, 2f32.powi(-24)]
    );
    assert_eq!(file.tensors["h"].shape(), &[2, 2]);
    assert_eq!(file.tensors["b"].to_vec(), vec![3.0, -0.75]);
    assert_eq!(file.tensors["i"].to_vec(), vec![7.0, -3.0]);

    // A dtype with no float reading is an error naming the file and the tensor.
    let bools = [1u8, 0];
    let path = dir.path().join("bool.safetensors");
    let views = vec![(
        "mask",
        TensorView::new(Dtype::BOOL, vec![2], &bools).unwrap(),
    )];
    safetensors::serialize_to_file(views, None, &path).unwrap();
    let e = message(read_safetensors(&path).unwrap_err());
    assert!(
        e.contains("bool.safetensors") && e.contains("mask") && e.contains("unsupported dtype"),
        "{e}"
    );
}

#[test]
fn truncated_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    save(&model(1, 2), &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    // Cut in the data, in the header, and inside the 8-byte header length.
    for (name, keep) in [
        ("cut_data.safetensors", bytes.len() - 10),
        ("cut_header.safetensors", 40),
        ("cut_len.safetensors", 5),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let b = model(2, 2);
        let before = bits(&b);
        let err = load(&b, &path, &strict()).unwrap_err();
        assert!(matches!(err, NnError::Format { .. }), "{name}: {err:?}");
        let e = message(err);
        assert!(e.contains(name), "{e}");
        assert!(e.contains("not a valid safetensors file"), "{e}");
        assert_eq!(bits(&b), before, "{name}: a failed load changes nothing");
    }
}

#[test]
fn non_safetensors_and_missing_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "these are not tensors, just a long enough line of text",
    )
    .unwrap();
    let e = message(load(&model(1, 2), &text, &strict()).unwrap_err());
    assert!(
        e.contains("notes.txt") && e.contains("not a valid safetensors file"),
        "{e}"
    );

    let absent = dir.path().join("absent.safetensors");
    let err = load(&model(1, 2), &absent, &strict()).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err:?}");
    assert!(message(err).contains("absent.safetensors"));

    // Writing into a folder that does not exist names the file too.
    let nowhere = dir.path().join("no_such_dir").join("m.safetensors");
    let err = save(&model(1, 2), &nowhere).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err:?}");
    assert!(message(err).contains("m.safetensors"));
}

/// Writes `a`'s state dict after `edit` to a file, loads it strictly into a fresh model, and
/// checks the error (a `Mismatch` naming the file) and that the model is unchanged.
fn strict_failure(
    edit: impl FnOnce(&mut Vec<(String, Tensor)>),
    outputs: usize,
) -> (String, LoadReport, Sequential) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.safetensors");
    let mut tensors = state_dict(&model(1, 2));
    edit(&mut tensors);
    write_safetensors(&path, &tensors, &BTreeMap::new()).unwrap();
    let b = model(2, outputs);
    let before = bits(&b);
    let err = load(&b, &path, &strict()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("edited.safetensors"), "{text}");
    let NnError::Mismatch { report, .. } = err else {
        panic!("expected a mismatch, got {text}")
    };
    assert_eq!(
        bits(&b),
        before,
        "a failed strict load changes nothing: {text}"
    );
    (text, report, b)
}

#[test]
fn wrong_shape_names_the_key_and_both_shapes() {
    let (text, report, _) = strict_failure(|_| {}, 3);
    assert!(
        text.contains("4.weight has shape [2, 64] in the file, the model expects [3, 64]"),
        "{text}"
    );
    assert!(
        text.contains("4.bias has shape [2] in the file, the model expects [3]"),
        "{text}"
    );
    assert_eq!(
        report.mismatched,
        vec![
            ("4.weight".to_string(), vec![3, 64], vec![2, 64]),
            ("4.bias".to_string(), vec![3], vec![2]),
        ]
    );
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
}

#[test]
fn missing_key_is_named() {
    let (text, report, _) = strict_failure(|t| t.retain(|(n, _)| n != "1.running_var"), 2);
    assert!(text.contains(r#"missing keys ["1.running_var"]"#), "{text}");
    assert_eq!(report.missing, ["1.running_var"]);
    assert!(report.unexpected.is_empty() && report.mismatched.is_empty());
}

#[test]
fn unexpected_key_is_named() {
    let (text, report, _) =
        strict_failure(|t| t.push(("5.weight".into(), Tensor::zeros(&[2, 2]))), 2);
    assert!(text.contains(r#"unexpected keys ["5.weight"]"#), "{text}");
    assert_eq!(report.unexpected, ["5.weight"]);
    assert!(report.missing.is_empty() && report.mismatched.is_empty());
}

#[test]
fn lenient_load_copies_what_fits_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.safetensors");
    let a = model(1, 2);
    let mut tensors = state_dict(&a);
    tensors.retain(|(n, _)| n != "0.bias");
    tensors.push(("extra".into(), Tensor::ones(&[1])));
    write_safetensors(&path, &tensors, &BTreeMap::new()).unwrap();
    let b = model(2, 3); // the head has another size
    let b_before = state_dict(&b);
    let report = load(&b, &path, &LoadOptions::default()).unwrap();
    assert_eq!(report.missing, ["0.bias"]);
    assert_eq!(report.unexpected, ["extra"]);
    let mismatched: Vec<&str> = report
        .mismatched
        .iter()
        .map(|(n, _, _)| n.as_str())
        .collect();
    assert_eq!(mismatched, ["4.weight", "4.bias"]);
    let a_values: HashMap<String, Tensor> = state_dict(&a).into_iter().collect();
    let old: HashMap<String, Tensor> = b_before.into_iter().collect();
    for (name, t) in state_dict(&b) {
        let want = if ["0.bias", "4.weight", "4.bias"].contains(&name.as_str()) {
            &old[&name]
        } else {
            &a_values[&name]
        };
        assert_eq!(t.to_vec(), want.to_vec(), "{name}");
    }
}

#[test]
fn rename_maps_file_names_to_model_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gan.safetensors");
    let g = model(1, 2);
    let d = model(5, 2);
    // One file holding two networks under prefixes, as a checkpoint does.
    let mut tensors: Vec<(String, Tensor)> = state_dict(&g)
        .into_iter()
        .map(|(n, t)| (format!("netG.{n}"), t))
        .collect();
    tensors.extend(
        state_dict(&d)
            .into_iter()
            .map(|(n, t)| (format!("netD.{n}"), t)),
    );
    write_safetensors(&path, &tensors, &BTreeMap::new()).unwrap();

    let only_g = |k: &str| k.strip_prefix("netG.").map(str::to_string);
    let b = model(2, 2);
    let report = load(
        &b,
        &path,
        &LoadOptions {
            strict: true,
            rename: Some(&only_g),
        },
    )
    .unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(bits(&b), bits(&g));

    // Without the map every name is wrong both ways.
    let err = load(&model(2, 2), &path, &strict()).unwrap_err();
    let NnError::Mismatch { report, .. } = err else {
        panic!("expected a mismatch")
    };
    assert_eq!(report.missing.len(), 8);
    assert_eq!(report.unexpected.len(), 16);
    assert!(report.unexpected.contains(&"netD.4.bias".to_string()));

    // A map that strips both prefixes gives every name two file keys: neither is loaded (which
    // one won used to depend on hash order), and each is reported with both keys.
    let any_prefix = |k: &str| k.split_once('.').map(|(_, rest)| rest.to_string());
    let c = model(2, 2);
    let before = bits(&c);
    let lenient = load(
        &c,
        &path,
        &LoadOptions {
            strict: false,
            rename: Some(&any_prefix),
        },
    )
    .unwrap();
    assert_eq!(bits(&c), before, "an ambiguous name must not be loaded");
    assert!(lenient.missing.is_empty() && lenient.unexpected.is_empty());
    assert_eq!(lenient.ambiguous.len(), 8);
    assert!(lenient.ambiguous.contains(&(
        "4.bias".to_string(),
        vec!["netD.4.bias".to_string(), "netG.4.bias".to_string()]
    )));
    let err = load(
        &c,
        &path,
        &LoadOptions {
            strict: true,
            rename: Some(&any_prefix),
        },
    )
    .unwrap_err();
    assert!(
        message(err).contains(
            r#"4.bias is the new name of several file keys ["netD.4.bias", "netG.4.bias"]"#
        ),
        "the error names the colliding keys"
    );
}

/// Trains `steps` steps, saves model and optimizer, continues one step; then rebuilds the model
/// from another seed, restores both into a fresh optimizer, takes the same step, and requires
/// identical bits.
fn resume_is_bit_exact(make: &dyn Fn() -> Box<dyn Optimizer>, steps: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (model_path, opt_path) = (
        dir.path().join("model.safetensors"),
        dir.path().join("optim.safetensors"),
    );
    let a = model(1, 2);
    let mut opt_a = make();
    for i in 0..steps {
        train_step(&a, opt_a.as_mut(), i);
    }
    save(&a, &model_path).unwrap();
    write_safetensors(&opt_path, &opt_a.state(&a), &BTreeMap::new()).unwrap();
    train_step(&a, opt_a.as_mut(), steps);

    let b = model(42, 2);
    load(&b, &model_path, &strict()).unwrap();
    let mut opt_b = make();
    opt_b
        .load_state(&b, &read_safetensors(&opt_path).unwrap().tensors)
        .unwrap();
    train_step(&b, opt_b.as_mut(), steps);
    assert_eq!(bits(&a), bits(&b));
    // And the states agree after the step too.
    let sa: Vec<(String, Vec<f32>)> = opt_a
        .state(&a)
        .into_iter()
        .map(|(n, t)| (n, t.to_vec()))
        .collect();
    let sb: Vec<(String, Vec<f32>)> = opt_b
        .state(&b)
        .into_iter()
        .map(|(n, t)| (n, t.to_vec()))
        .collect();
    assert_eq!(sa, sb);
}

#[test]
fn adam_state_resumes_bit_exactly_on_a_rebuilt_model() {
    resume_is_bit_exact(&|| Box::new(AdamConfig::dcgan().build()), 3);
    // A state saved before any step restores to a fresh optimizer.
    resume_is_bit_exact(&|| Box::new(AdamConfig::default().build()), 0);
}

#[test]
fn sgd_state_resumes_bit_exactly_on_a_rebuilt_model() {
    resume_is_bit_exact(&|| Box::new(SgdConfig::new(0.05).momentum(0.9).build()), 3);
}

#[test]
fn adam_state_names_and_errors() {
    let a = model(1, 2);
    let mut opt = AdamConfig::default().build();
    train_step(&a, &mut opt, 0);
    let state: HashMap<String, Tensor> = opt.state(&a).into_iter().collect();
    assert_eq!(state["step"].item(), 1.0);
    // Moments of trainable parameters only, under their names.
    let mut names: Vec<&str> = state.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "0.bias.exp_avg",
            "0.bias.exp_avg_sq",
            "0.weight.exp_avg",
            "0.weight.exp_avg_sq",
            "1.bias.exp_avg",
            "1.bias.exp_avg_sq",
            "1.weight.exp_avg",
            "1.weight.exp_avg_sq",
            "4.bias.exp_avg",
            "4.bias.exp_avg_sq",
            "4.weight.exp_avg",
            "4.weight.exp_avg_sq",
            "step"
        ]
    );

    let mut missing = state.clone();
    missing.remove("4.weight.exp_avg_sq");
    let e = message(
        AdamConfig::default()
            .build()
            .load_state(&a, &missing)
            .unwrap_err(),
    );
    assert!(e.contains("4.weight.exp_avg_sq"), "{e}");

    // A model with another head: the saved moments do not fit.
    let other = model(1, 3);
    let e = message(
        AdamConfig::default()
            .build()
            .load_state(&other, &state)
            .unwrap_err(),
    );
    assert!(
        e.contains("4.weight.exp_avg") && e.contains("[2, 64]"),
        "{e}"
    );

    let e = message(
        AdamConfig::default()
            .build()
            .load_state(&a, &HashMap::new())
            .unwrap_err(),
    );
    assert!(e.contains("step"), "{e}");
}

#[test]
fn state_dict_of_a_path_that_is_a_folder_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&model(1, 2), dir.path(), &strict()).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err:?}");
    assert!(message(err).contains(&*dir.path().to_string_lossy()));
    assert!(Path::new(dir.path()).is_dir());
}

#[test]
fn duplicate_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.safetensors");
    let t = Tensor::zeros(&[2]);
    let r = write_safetensors(
        &path,
        &[("w".into(), t.clone()), ("w".into(), Tensor::ones(&[3]))],
        &BTreeMap::new(),
    );
    let e = message(r.unwrap_err());
    assert!(e.contains("dup.safetensors") && e.contains('w'), "{e}");
    assert!(!path.exists());
}
