//! The state lock: exclusive, names its holder, and never goes stale.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use takt_store::{LOCK_FILE, LockError, StateLock};

#[test]
fn a_second_acquire_fails_naming_the_holder_and_succeeds_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    let lock = StateLock::acquire(dir.path()).unwrap();
    let err = StateLock::acquire(dir.path()).unwrap_err();
    match &err {
        LockError::Held { pid, state_dir } => {
            assert_eq!(*pid, Some(std::process::id()));
            assert_eq!(state_dir, dir.path());
        }
        other => panic!("expected Held, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "another takt daemon (pid {}) is using {}; stop it first",
            std::process::id(),
            dir.path().display()
        )
    );
    assert_eq!(StateLock::holder(dir.path()), Some(std::process::id()));
    drop(lock);
    assert_eq!(StateLock::holder(dir.path()), None);
    let again = StateLock::acquire(dir.path()).unwrap();
    drop(again);
}

#[test]
fn a_holder_killed_with_sigkill_leaves_no_stale_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOCK_FILE);
    // Another process takes the same kind of lock (flock) and writes its pid, as a daemon would.
    let script = "import fcntl, os, sys, time\n\
                  f = open(sys.argv[1], 'a+')\n\
                  fcntl.flock(f, fcntl.LOCK_EX)\n\
                  f.truncate(0)\n\
                  f.write(str(os.getpid()))\n\
                  f.flush()\n\
                  print('locked', flush=True)\n\
                  time.sleep(120)\n";
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");

    let err = StateLock::acquire(dir.path()).unwrap_err();
    assert!(
        matches!(err, LockError::Held { pid: Some(pid), .. } if pid == child.id()),
        "{err:?}"
    );
    assert_eq!(StateLock::holder(dir.path()), Some(child.id()));

    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();

    assert_eq!(StateLock::holder(dir.path()), None);
    let lock = StateLock::acquire(dir.path()).unwrap();
    assert_eq!(StateLock::holder(dir.path()), Some(std::process::id()));
    drop(lock);
}
