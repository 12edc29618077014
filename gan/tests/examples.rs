//! The crate's examples, run: each example file is compiled into this test and its body
//! called with few steps, so that what a user copies keeps working.

#[path = "../examples/train_dcgan.rs"]
mod train_dcgan;

#[path = "../examples/custom_gan.rs"]
mod custom_gan;

#[test]
fn train_dcgan_trains_on_mnist_and_writes_a_grid() {
    let out = std::env::temp_dir().join(format!("gantry-example-dcgan-{}.png", std::process::id()));
    let m = train_dcgan::train(3, &out).unwrap_or_else(|e| panic!("the example failed: {e}"));
    assert_eq!(m.step, 3);
    assert!(m.loss_d.is_finite() && m.loss_g.is_finite(), "{m:?}");
    let grid = image::open(&out).expect("a PNG grid").to_luma8();
    // 8x8 samples of 28x28 with 2-pixel borders.
    assert_eq!(grid.width(), grid.height());
    assert!(grid.width() >= 8 * 28, "{}", grid.width());
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn a_user_defined_gan_trains_with_the_trainer_and_finds_both_modes() {
    let (left, right) =
        custom_gan::train(1500).unwrap_or_else(|e| panic!("the example failed: {e}"));
    assert!(
        left > 0.2 && right > 0.2 && left + right > 0.8,
        "samples near -2: {left}, near +2: {right}"
    );
}
