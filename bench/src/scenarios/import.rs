//! `bench import`: how long `mosaic import openapi` takes on a large real document — GitHub's
//! full REST description (npm `@octokit/openapi`, about 1,000 operations; installed by
//! scripts/test.sh in tests/openapi-corpus), or any document given. Each run is the whole
//! command as a user runs it: read, generate, write, then `mosaic check` of the result; `mosaic
//! check` alone on the written files is timed too, to tell the two apart. Target: under 5 s.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::Env;

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The document (default: GitHub's description in tests/openapi-corpus/node_modules).
    #[arg(long)]
    document: Option<PathBuf>,
    /// Runs, each a fresh output folder.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const TARGET: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize)]
struct Results {
    document: String,
    operations_bound: String,
    import_and_check_s: Vec<f64>,
    check_alone_s: Vec<f64>,
    median_s: f64,
    target_s: f64,
}

fn timed(cmd: &mut Command) -> Result<(Duration, String)> {
    let started = Instant::now();
    let out = cmd.output().context("cannot run mosaic")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((took, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    super::quantile(&mut v, 0.5)
}

pub async fn run(args: ImportArgs, env: Env) -> Result<Vec<String>> {
    let document = args.document.unwrap_or_else(|| {
        crate::workspace_root().join("tests/openapi-corpus/node_modules/@octokit/openapi/generated/api.github.com.json")
    });
    if !document.exists() {
        bail!(
            "{} is missing: run `npm ci` in tests/openapi-corpus (scripts/test.sh does), or give --document",
            document.display()
        );
    }
    let runs = if env.smoke { 1 } else { args.runs.max(1) };
    let mut import_s = Vec::new();
    let mut check_s = Vec::new();
    let mut bound = String::new();
    for i in 0..runs {
        let out = env.tmp.path.join(format!("import-{i}"));
        let (took, stdout) = timed(
            Command::new(&env.mosaic_bin)
                .args(["import", "openapi", "--backend", "api", "--out"])
                .arg(&out)
                .arg(&document),
        )?;
        bound = stdout.lines().next().unwrap_or_default().to_string();
        import_s.push(took.as_secs_f64());
        let (took, _) = timed(
            Command::new(&env.mosaic_bin)
                .arg("check")
                .arg("--config")
                .arg(out.join("mosaic.toml")),
        )?;
        check_s.push(took.as_secs_f64());
        eprintln!("bench import: run {} of {runs}: {:.2} s", i + 1, import_s[i]);
    }
    let results = Results {
        document: document.display().to_string(),
        operations_bound: bound,
        median_s: median(&import_s),
        import_and_check_s: import_s,
        check_alone_s: check_s,
        target_s: TARGET.as_secs_f64(),
    };
    println!(
        "\nImport: {}\n  {}\n  import + check: median {:.2} s (runs {:?}); check alone: median {:.2} s; target < {:.0} s\n",
        results.document,
        results.operations_bound,
        results.median_s,
        results.import_and_check_s.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>(),
        median(&results.check_alone_s),
        results.target_s
    );
    env.write_results("bench-import", &results)?;
    let mut problems = Vec::new();
    if results.median_s >= results.target_s {
        problems.push(format!(
            "import took {:.2} s (target < {:.0} s)",
            results.median_s, results.target_s
        ));
    }
    Ok(problems)
}
