//! The config/SDL loader: `mosaic.toml` and a schema file, as `mosaic check` reads them.
//!
//! Input: the TOML text, a NUL byte, the SDL text (no NUL: all TOML, no SDL). Invalid UTF-8 is
//! read lossily (the loader itself only ever sees `String`s). Loading, building the plan and
//! rendering the diagnostics (or the plan's summary) must never panic, whatever the files say.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic_gateway::cli::build_plan;
use mosaic_gateway::config::{load_from_sources, SourceFile};
use mosaic_gateway::plan::summary::Summary;
use mosaic_gateway::runtime::ResolverRegistry;

fuzz_target!(|data: &[u8]| {
    let (toml, sdl) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let toml = String::from_utf8_lossy(toml);
    let sdl = String::from_utf8_lossy(sdl);
    let loaded = load_from_sources(
        SourceFile::new("mosaic.toml", toml.as_ref()),
        vec![SourceFile::new("schema.graphql", sdl.as_ref())],
    );
    match loaded {
        Ok(src) => match build_plan(&src, &ResolverRegistry::new()) {
            Ok(plan) => {
                let _ = Summary::of(&plan).to_string();
            }
            Err(diagnostics) => {
                let _ = diagnostics.to_string();
            }
        },
        Err(diagnostics) => {
            let _ = diagnostics.to_string();
        }
    }
});
