//! A small Python pickle reader for what `torch.save` writes into `data.pkl`: dicts, tuples,
//! lists, numbers, strings, `GLOBAL` references and `REDUCE` calls kept as data, and
//! persistent ids (how a tensor points at its storage file).
//!
//! Nothing is executed: a call `f(args)` becomes [`Value::Call`] for the caller to
//! interpret, except `collections.OrderedDict()`, which becomes an empty [`Value::Dict`] so
//! that the `SETITEMS` that follow can fill it. No pickle crate fits: the maintained ones
//! resolve globals to Python objects or drop persistent ids, and the ones that keep them are
//! unmaintained.

use std::collections::HashMap;

/// A decoded pickle value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int that fits 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A str.
    Str(String),
    /// bytes.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A dict (or OrderedDict), in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A reference to `module.name`.
    Global(String, String),
    /// `callable(*args)`, not evaluated.
    Call(Box<Value>, Vec<Value>),
    /// A persistent id (`torch.save`: `('storage', type, key, location, numel)`).
    Persistent(Box<Value>),
}

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError(pub String);

type Result<T> = std::result::Result<T, PickleError>;

fn err<T>(message: impl Into<String>) -> Result<T> {
    Err(PickleError(message.into()))
}

/// A stack entry: a value, or the `MARK` that list-building opcodes pop back to.
enum Slot {
    Mark,
    Value(Value),
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return err(format!("truncated at byte {}", self.pos));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return err("unterminated GLOBAL name");
        };
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn string(&mut self, n: usize) -> Result<String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| PickleError("invalid UTF-8".into()))
    }
}

struct Machine {
    stack: Vec<Slot>,
    memo: HashMap<u32, Value>,
}

impl Machine {
    fn push(&mut self, v: Value) {
        self.stack.push(Slot::Value(v));
    }

    fn pop(&mut self) -> Result<Value> {
        match self.stack.pop() {
            Some(Slot::Value(v)) => Ok(v),
            Some(Slot::Mark) => err("unexpected MARK on the stack"),
            None => err("stack underflow"),
        }
    }

    fn top(&mut self) -> Result<&mut Value> {
        match self.stack.last_mut() {
            Some(Slot::Value(v)) => Ok(v),
            _ => err("stack underflow"),
        }
    }

    /// The values pushed since the last `MARK`, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let Some(mark) = self.stack.iter().rposition(|s| matches!(s, Slot::Mark)) else {
            return err("no MARK to pop to");
        };
        let items = self
            .stack
            .drain(mark..)
            .skip(1)
            .map(|s| match s {
                Slot::Value(v) => v,
                Slot::Mark => unreachable!("rposition found the last mark"),
            })
            .collect();
        Ok(items)
    }

    fn memo_get(&mut self, key: u32) -> Result<()> {
        match self.memo.get(&key) {
            Some(v) => {
                let v = v.clone();
                self.push(v);
                Ok(())
            }
            None => err(format!("memo key {key} is not set")),
        }
    }

    fn memo_put(&mut self, key: u32) -> Result<()> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return err("SETITEMS with an odd number of values");
        }
        let Value::Dict(d) = self.top()? else {
            return err("SETITEMS on something that is not a dict");
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        let Value::List(l) = self.top()? else {
            return err("APPEND on something that is not a list");
        };
        l.extend(items);
        Ok(())
    }
}

/// `REDUCE`: `OrderedDict()` is built (it is filled by later opcodes); any other call is
/// kept as data.
fn reduce(f: Value, args: Value) -> Result<Value> {
    let Value::Tuple(args) = args else {
        return err("REDUCE arguments are not a tuple");
    };
    match &f {
        Value::Global(m, n) if m == "collections" && n == "OrderedDict" => {
            Ok(Value::Dict(Vec::new()))
        }
        _ => Ok(Value::Call(Box::new(f), args)),
    }
}

/// Decodes one pickle.
///
/// # Errors
/// On an opcode outside the subset `torch.save` uses, or malformed input.
pub fn parse(bytes: &[u8]) -> Result<Value> {
    let mut r = Reader { bytes, pos: 0 };
    let mut m = Machine {
        stack: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let at = r.pos;
        let op = r.u8()?;
        match op {
            0x80 => {
                r.u8()?; // PROTO version
            }
            0x95 => {
                r.take(8)?; // FRAME length
            }
            b'.' => return m.pop(),
            b'(' => m.stack.push(Slot::Mark),
            b'}' => m.push(Value::Dict(Vec::new())),
            b']' => m.push(Value::List(Vec::new())),
            b')' => m.push(Value::Tuple(Vec::new())),
            b'N' => m.push(Value::None),
            0x88 => m.push(Value::Bool(true)),
            0x89 => m.push(Value::Bool(false)),
            b'K' => {
                let v = r.u8()?;
                m.push(Value::Int(v.into()))
            }
            b'M' => {
                let v = r.u16()?;
                m.push(Value::Int(v.into()))
            }
            b'J' => {
                let v = r.u32()? as i32;
                m.push(Value::Int(v.into()))
            }
            0x8a => {
                let n = r.u8()? as usize;
                let b = r.take(n)?;
                if n > 8 {
                    return err("LONG1 integer wider than 64 bits");
                }
                let mut v: i64 = 0;
                for (i, &byte) in b.iter().enumerate() {
                    v |= i64::from(byte) << (8 * i);
                }
                // Two's complement of an n-byte integer.
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                m.push(Value::Int(v))
            }
            b'G' => {
                let v = f64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes"));
                m.push(Value::Float(v))
            }
            b'X' => {
                let n = r.u32()? as usize;
                let s = r.string(n)?;
                m.push(Value::Str(s))
            }
            0x8c => {
                let n = r.u8()? as usize;
                let s = r.string(n)?;
                m.push(Value::Str(s))
            }
            b'B' => {
                let n = r.u32()? as usize;
                let b = r.take(n)?.to_vec();
                m.push(Value::Bytes(b))
            }
            b'C' => {
                let n = r.u8()? as usize;
                let b = r.take(n)?.to_vec();
                m.push(Value::Bytes(b))
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                m.push(Value::Global(module, name))
            }
            0x93 => {
                let name = m.pop()?;
                let module = m.pop()?;
                match (module, name) {
                    (Value::Str(module), Value::Str(name)) => m.push(Value::Global(module, name)),
                    _ => return err("STACK_GLOBAL needs two strings"),
                }
            }
            b'q' => {
                let k = r.u8()?;
                m.memo_put(k.into())?
            }
            b'r' => {
                let k = r.u32()?;
                m.memo_put(k)?
            }
            0x94 => {
                let k = m.memo.len() as u32;
                m.memo_put(k)?
            }
            b'h' => {
                let k = r.u8()?;
                m.memo_get(k.into())?
            }
            b'j' => {
                let k = r.u32()?;
                m.memo_get(k)?
            }
            b't' => {
                let items = m.pop_mark()?;
                m.push(Value::Tuple(items))
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = (0..n).map(|_| m.pop()).collect::<Result<Vec<_>>>()?;
                items.reverse();
                m.push(Value::Tuple(items))
            }
            b'l' => {
                let items = m.pop_mark()?;
                m.push(Value::List(items))
            }
            b'd' => {
                let items = m.pop_mark()?;
                m.push(Value::Dict(Vec::new()));
                m.set_items(items)?
            }
            b'a' => {
                let v = m.pop()?;
                m.append(vec![v])?
            }
            b'e' => {
                let items = m.pop_mark()?;
                m.append(items)?
            }
            b's' => {
                let v = m.pop()?;
                let k = m.pop()?;
                m.set_items(vec![k, v])?
            }
            b'u' => {
                let items = m.pop_mark()?;
                m.set_items(items)?
            }
            b'Q' => {
                let id = m.pop()?;
                m.push(Value::Persistent(Box::new(id)))
            }
            b'R' => {
                let args = m.pop()?;
                let f = m.pop()?;
                m.push(reduce(f, args)?)
            }
            0x81 => {
                // NEWOBJ: cls.__new__(cls, *args), kept as a call like REDUCE.
                let args = m.pop()?;
                let cls = m.pop()?;
                m.push(reduce(cls, args)?)
            }
            b'b' => {
                // BUILD sets an object's state (an OrderedDict's `_metadata`): not needed.
                m.pop()?;
            }
            b'0' => {
                m.pop()?;
            }
            _ => {
                return err(format!(
                    "unsupported pickle opcode 0x{op:02x} at byte {at} (not written by torch.save)"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_dict_with_tuples_globals_and_persistent_ids() {
        // pickle.dumps({'a': (1, -2, 3.5), 'b': [True, None]}, protocol=2), with a
        // persistent id and a global added by hand as torch.save writes them.
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend(b"X\x01\x00\x00\x00a");
        p.extend([b'K', 1, b'J', 0xfe, 0xff, 0xff, 0xff, b'G']);
        p.extend(3.5f64.to_be_bytes());
        p.push(0x87);
        p.extend(b"X\x01\x00\x00\x00b]q\x01(\x88Ne");
        p.extend(b"X\x01\x00\x00\x00p(X\x07\x00\x00\x00storagectorch\nFloatStorage\ntQ");
        p.extend(b"u.");
        let v = parse(&p).unwrap();
        let Value::Dict(items) = v else {
            panic!("not a dict: {v:?}")
        };
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0].1,
            Value::Tuple(vec![Value::Int(1), Value::Int(-2), Value::Float(3.5)])
        );
        assert_eq!(
            items[1].1,
            Value::List(vec![Value::Bool(true), Value::None])
        );
        assert_eq!(
            items[2].1,
            Value::Persistent(Box::new(Value::Tuple(vec![
                Value::Str("storage".into()),
                Value::Global("torch".into(), "FloatStorage".into()),
            ])))
        );
    }

    #[test]
    fn an_ordered_dict_call_becomes_a_dict_that_setitems_fills() {
        let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00kK\x07s.";
        assert_eq!(
            parse(p).unwrap(),
            Value::Dict(vec![(Value::Str("k".into()), Value::Int(7))])
        );
    }

    #[test]
    fn truncated_and_unknown_input_are_errors_not_panics() {
        assert!(
            parse(b"\x80\x02}X\xff\x00\x00\x00ab")
                .unwrap_err()
                .0
                .contains("truncated")
        );
        assert!(
            parse(b"\x80\x02\xfe")
                .unwrap_err()
                .0
                .contains("unsupported")
        );
        assert!(parse(b"").is_err());
        assert!(parse(b"u.").is_err());
    }
}
