//! PyTorch parameter names of the reference projects, mapped to gantry's.
//!
//! Each function returns the gantry name for a PyTorch name, `None` for what gantry does not
//! keep (`num_batches_tracked`), and unknown names unchanged, so that a strict load reports
//! them by name instead of dropping them.

/// Strips `module.` (a network saved from inside `nn.DataParallel`).
fn strip_parallel(name: &str) -> &str {
    name.strip_prefix("module.").unwrap_or(name)
}

fn is_counter(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

/// pytorch/examples' DCGAN (`netG`, `netD`): both are `self.main = nn.Sequential(...)` with
/// gantry's layer order, so `main.3.weight` is `3.weight`.
pub fn dcgan(name: &str) -> Option<String> {
    if is_counter(name) {
        return None;
    }
    let name = strip_parallel(name);
    Some(name.strip_prefix("main.").unwrap_or(name).to_string())
}

/// junyanz/pytorch-CycleGAN-and-pix2pix's `NLayerDiscriminator`: `model.K.*` is `K.*`.
pub fn pix2pix_discriminator(name: &str) -> Option<String> {
    if is_counter(name) {
        return None;
    }
    let name = strip_parallel(name);
    Some(name.strip_prefix("model.").unwrap_or(name).to_string())
}

/// junyanz's `UnetGenerator` with `num_downs` levels: nested `UnetSkipConnectionBlock`s,
/// each a `model` Sequential whose submodule is the next level.
///
/// | block     | Sequential                                                     | gantry               |
/// |-----------|----------------------------------------------------------------|----------------------|
/// | outermost | 0 downconv, 1 sub, 2 ReLU, 3 upconv, 4 Tanh                    | `down.0`, `up.0`     |
/// | middle    | 0 LReLU, 1 downconv, 2 norm, 3 sub, 4 ReLU, 5 upconv, 6 norm (7 dropout) | `down.i`, `down_bn.i`, `up.i`, `up_bn.i` |
/// | innermost | 0 LReLU, 1 downconv, 2 ReLU, 3 upconv, 4 norm                  | `down.i`, `up.i`, `up_bn.i` |
///
/// So `model.model.1.model.3.model.5.weight` is level 2's upconv, `up.2.weight`.
pub fn pix2pix_generator(name: &str, num_downs: usize) -> Option<String> {
    if is_counter(name) {
        return None;
    }
    let original = name;
    let unchanged = || Some(original.to_string());
    let Some(mut rest) = strip_parallel(name).strip_prefix("model.") else {
        return unchanged();
    };
    let mut level = 0;
    loop {
        let Some(r) = rest.strip_prefix("model.") else {
            return unchanged();
        };
        let Some((index, param)) = r.split_once('.') else {
            return unchanged();
        };
        let Ok(index) = index.parse::<usize>() else {
            return unchanged();
        };
        let innermost = level + 1 == num_downs;
        let descend = if level == 0 {
            index == 1
        } else {
            !innermost && index == 3
        };
        if descend {
            level += 1;
            rest = param;
            continue;
        }
        let layer = match (level == 0, innermost, index) {
            (true, _, 0) => "down",
            (true, _, 3) => "up",
            (true, _, _) => return unchanged(),
            (false, _, 1) => "down",
            (false, false, 2) => "down_bn",
            (false, false, 5) | (false, true, 3) => "up",
            (false, false, 6) | (false, true, 4) => "up_bn",
            _ => return unchanged(),
        };
        return Some(format!("{layer}.{level}.{param}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcgan_names_lose_main_and_module() {
        assert_eq!(dcgan("main.0.weight").unwrap(), "0.weight");
        assert_eq!(dcgan("module.main.4.running_var").unwrap(), "4.running_var");
        assert_eq!(dcgan("main.1.num_batches_tracked"), None);
    }

    #[test]
    fn unet_names_follow_the_nesting() {
        let n = 5;
        let g = |s: &str| pix2pix_generator(s, n).unwrap();
        assert_eq!(g("model.model.0.weight"), "down.0.weight");
        assert_eq!(g("model.model.3.bias"), "up.0.bias");
        assert_eq!(g("model.model.1.model.1.weight"), "down.1.weight");
        assert_eq!(
            g("model.model.1.model.2.running_mean"),
            "down_bn.1.running_mean"
        );
        assert_eq!(g("model.model.1.model.5.weight"), "up.1.weight");
        assert_eq!(g("model.model.1.model.6.bias"), "up_bn.1.bias");
        assert_eq!(g("model.model.1.model.3.model.5.weight"), "up.2.weight");
        // Level 4 of 5 is the innermost block: no down norm, its upconv at 3.
        let inner = "model.model.1.model.3.model.3.model.3.model";
        assert_eq!(g(&format!("{inner}.1.weight")), "down.4.weight");
        assert_eq!(g(&format!("{inner}.3.weight")), "up.4.weight");
        assert_eq!(g(&format!("{inner}.4.weight")), "up_bn.4.weight");
        assert_eq!(g("module.model.model.0.weight"), "down.0.weight");
        assert_eq!(
            pix2pix_generator("model.model.1.model.2.num_batches_tracked", n),
            None
        );
        // Unknown names come back unchanged, to be reported.
        assert_eq!(g("model.model.9.weight"), "model.model.9.weight");
        assert_eq!(g("other.weight"), "other.weight");
    }

    #[test]
    fn patchgan_names_lose_model() {
        assert_eq!(pix2pix_discriminator("model.11.bias").unwrap(), "11.bias");
    }
}
