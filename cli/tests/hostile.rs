//! The binary under hostile use: two processes on one run directory, a resume killed while it
//! rewrites the log, `--out` into someone's folder, signals during training.

mod common;

use common::{fails_in_one_line, ok, s, temp};
use gantry_gan::checkpoint;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A background `gantry train`, killed when dropped: a failed assertion must not leave an
/// endless run behind.
struct Training(Option<Child>);

impl Training {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("still running")
    }

    /// Waits for the process to end, with its output.
    fn wait(mut self) -> std::process::Output {
        self.0
            .take()
            .expect("still running")
            .wait_with_output()
            .unwrap()
    }
}

impl Drop for Training {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `gantry train ARGS` in the background, output captured.
fn spawn_train(args: &[&str]) -> Training {
    Training(Some(
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("train")
            .args(args)
            .env("RAYON_NUM_THREADS", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gantry binary runs"),
    ))
}

/// Waits (at most two minutes: the machine may be loaded) until `ready` holds.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number of lines of `metrics.jsonl` in `run` (0 if it does not exist yet).
fn logged_rows(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl")).map_or(0, |t| t.lines().count())
}

/// An endless MLP run on the ring into `run`, logging every step.
fn endless(run: &Path, extra: &[&str]) -> Training {
    let mut args = vec![
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "100000000",
        "--log-every",
        "1",
        "--sample-every",
        "0",
        "--quiet",
        "--out",
        s(run),
    ];
    args.extend(extra);
    spawn_train(&args)
}

#[test]
fn a_second_process_on_a_running_run_directory_is_refused() {
    let run = temp("locked");
    let mut child = endless(&run, &["--checkpoint-every", "1"]);
    wait_for("the first checkpoint", || {
        run.join("checkpoint.safetensors").exists()
    });
    let pid = format!("pid {}", child.child().id());
    let err = fails_in_one_line(&["train", "--resume", s(&run), "--steps", "1"]);
    assert!(
        err.contains("in use by another gantry process") && err.contains(&pid),
        "{err}"
    );
    assert!(err.contains(s(&run)), "names the directory: {err}");
    let err = fails_in_one_line(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--out",
        s(&run),
    ]);
    assert!(err.contains("already holds a run"), "{err}");
    assert!(
        child.child().try_wait().unwrap().is_none(),
        "the first process was disturbed"
    );
    drop(child);
    // Every row was written whole: each line parses.
    for line in std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
    {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("a broken row {line:?}: {e}"));
    }
    // With the holder gone, the run can be resumed.
    let err = fails_in_one_line(&["train", "--resume", s(&run), "--steps", "1"]);
    assert!(err.contains("already at step"), "{err}");
}

#[cfg(unix)]
#[test]
fn resume_replaces_the_metrics_log_by_a_rename_not_in_place() {
    use std::os::unix::fs::MetadataExt;
    let run = temp("metrics-rename");
    let common = ["--sample-every", "0", "--log-every", "1", "--quiet"];
    let mut args = vec![
        "train", "--model", "mlp", "--data", "ring", "--steps", "6", "--out",
    ];
    args.push(s(&run));
    args.extend(common);
    ok(&args);
    let inode = std::fs::metadata(run.join("metrics.jsonl")).unwrap().ino();
    let mut args = vec!["train", "--steps", "9", "--resume", s(&run)];
    args.extend(common);
    ok(&args);
    // A file truncated and rewritten in place keeps its inode; killed in between, it is
    // left empty. A renamed temporary file is a new inode, and the old log stands until then.
    let after = std::fs::metadata(run.join("metrics.jsonl")).unwrap().ino();
    assert_ne!(inode, after, "metrics.jsonl was rewritten in place");
    let steps: Vec<u64> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, (1..=9).collect::<Vec<_>>());
}

#[test]
fn out_into_a_non_empty_folder_is_refused_and_nothing_is_written() {
    let dir = temp("someones-folder");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let err = fails_in_one_line(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "2",
        "--out",
        s(&dir),
    ]);
    assert!(
        err.contains("is not empty") && err.contains("notes.txt"),
        "{err}"
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["notes.txt"], "the folder was written to");

    // A setting found wrong only late (here the step target) leaves no folder behind.
    let fresh = temp("fresh-refused");
    let err = fails_in_one_line(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "0",
        "--out",
        s(&fresh),
    ]);
    assert!(err.contains("--steps"), "{err}");
    assert!(!fresh.exists(), "{} was created", fresh.display());

    // An empty folder (or one holding only an old lock file) is fine.
    let empty = temp("empty-out");
    std::fs::create_dir_all(&empty).unwrap();
    ok(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "2",
        "--quiet",
        "--out",
        s(&empty),
    ]);
}

/// Sends `signal` (`INT`, `TERM`) to `child` with kill(1).
#[cfg(unix)]
fn send(child: &mut Training, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.child().id().to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn sigint_and_sigterm_finish_the_step_save_and_exit_130_and_143() {
    let run = temp("signals");
    for (i, (signal, code)) in [("INT", 130), ("TERM", 143)].into_iter().enumerate() {
        // No periodic checkpoints: what the signal saves is the only one.
        let mut child = if i == 0 {
            endless(&run, &["--checkpoint-every", "0"])
        } else {
            spawn_train(&[
                "--resume",
                s(&run),
                "--steps",
                "100000000",
                "--log-every",
                "1",
                "--checkpoint-every",
                "0",
                "--sample-every",
                "0",
                "--quiet",
            ])
        };
        let before = logged_rows(&run);
        wait_for("a few more logged steps", || {
            logged_rows(&run) >= before + 3
        });
        send(&mut child, signal);
        let out = child.wait();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(code), "SIG{signal}: {err}");
        let (trainer, _) = checkpoint::load(&run.join("checkpoint.safetensors"))
            .unwrap_or_else(|e| panic!("SIG{signal}: {e}"));
        assert!(
            err.contains(&format!("SIG{signal} at step {}", trainer.step)),
            "{err}"
        );
        assert!(err.contains("checkpoint.safetensors"), "{err}");
        assert!(trainer.step >= (before + 3) as u64, "{}", trainer.step);
    }
}

#[test]
fn translate_keeps_inputs_and_gives_every_output_its_own_escaped_name() {
    let run = temp("p2p-hostile");
    ok(&[
        "train",
        "--model",
        "pix2pix",
        "--data",
        "edges2digits",
        "--image-size",
        "32",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let inputs = temp("p2p-hostile-in");
    std::fs::create_dir_all(&inputs).unwrap();
    let image = image::RgbImage::from_pixel(28, 28, image::Rgb([200, 10, 10]));
    let hostile = "<img src=x onerror=alert(1)>.png";
    for name in ["x.png", "x.jpg", hostile] {
        image.save(inputs.join(name)).unwrap();
    }
    let original = std::fs::read(inputs.join("x.png")).unwrap();

    // Onto itself, file or folder: refused, the original untouched.
    let file = inputs.join("x.png");
    let err = fails_in_one_line(&[
        "translate",
        "--run",
        s(&run),
        "--input",
        s(&file),
        "--out",
        s(&file),
    ]);
    assert!(err.contains("--out") && err.contains("--input"), "{err}");
    let err = fails_in_one_line(&[
        "translate",
        "--run",
        s(&run),
        "--input",
        s(&inputs),
        "--out",
        s(&inputs),
    ]);
    assert!(err.contains("replace the originals"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), original);

    let out = temp("p2p-hostile-out");
    ok(&[
        "translate",
        "--run",
        s(&run),
        "--input",
        s(&inputs),
        "--out",
        s(&out),
    ]);
    for name in ["x.png.png", "x.jpg.png", hostile] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        !html.contains("<img src=x"),
        "a file name became markup:\n{html}"
    );
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;.png"),
        "{html}"
    );
}
