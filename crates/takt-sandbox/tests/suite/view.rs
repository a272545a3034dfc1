//! A workspace shown at another path, with a frozen build cache below it: what warm agent
//! builds rest on. Root and bubblewrap only (the root supervisor mounts the overlay).

use std::os::unix::fs::PermissionsExt;

use takt_sandbox::{CacheOverlay, Mode, WorkspaceView};

use super::*;

/// A harness with a frozen cache like the gates' store keeps one: a `target/` the agent user
/// owns, inside a directory only root may enter.
struct Cached {
    harness: Harness,
    lower: PathBuf,
    upper: PathBuf,
    at: PathBuf,
}

fn cached() -> Option<Cached> {
    if !nix::unistd::Uid::effective().is_root() || !modes().contains(&Mode::Bwrap) {
        return None;
    }
    let mut harness = Harness::new();
    let base = harness.root.path().to_path_buf();
    let store = base.join("state/caches");
    let lower = store.join("k/target");
    std::fs::create_dir_all(lower.join("debug")).unwrap();
    std::fs::write(lower.join("debug/out.txt"), "CACHED").unwrap();
    let agent = takt_sandbox::user::ensure(takt_sandbox::user::DEFAULT_AGENT_USER).unwrap();
    for path in [
        lower.clone(),
        lower.join("debug"),
        lower.join("debug/out.txt"),
    ] {
        nix::unistd::chown(&path, Some(agent.uid.into()), Some(agent.gid.into())).unwrap();
    }
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
    let layers = base.join("state/layers");
    let upper = layers.join("upper");
    let at = base.join("state/fixed/checkout");
    harness.scope.view = Some(WorkspaceView {
        at: at.clone(),
        build_cache: Some(CacheOverlay {
            dir: "target".into(),
            lower: lower.clone(),
            upper: upper.clone(),
            work: layers.join("work"),
        }),
    });
    Some(Cached {
        harness,
        lower,
        upper,
        at,
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_agent_sees_its_workspace_at_the_view_with_the_cache_below_and_writes_only_its_own_layer() {
    let Some(cached) = cached() else {
        return;
    };
    let sandbox = sandbox(policy(Mode::Bwrap), None);
    let h = &cached.harness;
    std::fs::write(h.workspace().join("Cargo.toml"), "[package]\n").unwrap();
    let script = format!(
        "echo PWD $(pwd); cat Cargo.toml; echo; echo READ $(cat target/debug/out.txt); \
         echo REBUILT > target/debug/out.txt && echo made > target/new.txt && echo WROTE; \
         ls {host} >/dev/null 2>&1 && echo HOST-PATH-VISIBLE; \
         cat {lower}/debug/out.txt 2>/dev/null && echo LOWER-VISIBLE; \
         umount target 2>/dev/null && echo UNMOUNTED; echo finished",
        host = h.workspace().display(),
        lower = cached.lower.display(),
    );
    let ran = runtime().block_on(run(&sandbox, h, &script));
    let all = ran.all();
    assert!(ran.stdout.contains("finished"), "{all}");
    assert!(
        ran.stdout
            .contains(&format!("PWD {}\n", cached.at.display())),
        "{all}"
    );
    assert!(
        ran.stdout.contains("[package]"),
        "the workspace itself: {all}"
    );
    assert!(ran.stdout.contains("READ CACHED"), "{all}");
    assert!(ran.stdout.contains("WROTE"), "{all}");
    for escape in ["HOST-PATH-VISIBLE", "LOWER-VISIBLE", "UNMOUNTED"] {
        assert!(!ran.stdout.contains(escape), "{escape}: {all}");
    }
    assert_eq!(
        std::fs::read_to_string(cached.lower.join("debug/out.txt")).unwrap(),
        "CACHED",
        "the frozen cache was written"
    );
    assert!(!cached.lower.join("new.txt").exists());
    assert_eq!(
        std::fs::read_to_string(cached.upper.join("debug/out.txt")).unwrap(),
        "REBUILT\n"
    );
    assert!(cached.upper.join("new.txt").is_file());
    // On the host the workspace holds only the empty mount point: nothing for git to commit.
    let host_target: Vec<_> = std::fs::read_dir(h.workspace().join("target"))
        .unwrap()
        .collect();
    assert!(host_target.is_empty(), "{host_target:?}");
}

#[test]
fn a_symlink_planted_where_the_cache_goes_stops_the_launch_and_mounts_nothing_outside() {
    let Some(cached) = cached() else {
        return;
    };
    let sandbox = sandbox(policy(Mode::Bwrap), None);
    let h = &cached.harness;
    let outside = h.root.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, h.workspace().join("target")).unwrap();
    let ran = runtime().block_on(run(&sandbox, h, "echo RAN"));
    let all = ran.all();
    assert!(!ran.stdout.contains("RAN"), "{all}");
    assert!(ran.stderr.contains("symlink"), "{all}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "{all}");
}

#[test]
fn only_bubblewrap_can_show_a_workspace_elsewhere() {
    let Some(cached) = cached() else {
        return;
    };
    if !modes().contains(&Mode::Landlock) {
        return;
    }
    let sandbox = sandbox(policy(Mode::Landlock), None);
    assert!(!sandbox.can_show_elsewhere());
    let launch = Launch {
        program: "true".into(),
        cwd: cached.harness.workspace().to_path_buf(),
        ..Launch::default()
    };
    let error = sandbox
        .command(&cached.harness.scope, launch)
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot show the workspace"), "{error}");
}
