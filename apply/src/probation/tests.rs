use super::*;

fn unit(id: &str, active: &str, result: &str) -> UnitState {
    UnitState {
        id: id.into(),
        load: "loaded".into(),
        active: active.into(),
        sub: "x".into(),
        result: result.into(),
    }
}

#[test]
fn show_blocks() {
    let text = "Id=a.service\nLoadState=loaded\nActiveState=failed\nSubState=failed\nResult=exit-code\n\nId=b.target\nLoadState=loaded\nActiveState=active\nSubState=active\n";
    let s = parse_show(text);
    assert_eq!(s.len(), 2);
    assert_eq!(
        s[0],
        unit("a.service", "failed", "exit-code").with_sub("failed")
    );
    assert_eq!(s[1].active, "active");
    assert_eq!(s[1].result, "");
}

impl UnitState {
    fn with_sub(mut self, sub: &str) -> UnitState {
        self.sub = sub.into();
        self
    }
}

#[test]
fn verdicts() {
    let t_up = unit("multi-user.target", "active", "");
    let t_down = unit("boot-complete.target", "inactive", "");
    let ok = unit("app.service", "active", "success");
    let oneshot = unit("once.service", "inactive", "success");
    let bad = unit("app.service", "failed", "exit-code");
    let starting = unit("app.service", "activating", "success");
    assert_eq!(judge(&t_up, &[ok.clone(), oneshot], &[]), Some(Ok(())));
    assert_eq!(judge(&t_down, std::slice::from_ref(&ok), &[]), None);
    assert_eq!(judge(&t_up, std::slice::from_ref(&starting), &[]), None);
    assert_eq!(
        judge(&t_up, std::slice::from_ref(&bad), &[]),
        Some(Err("app.service (must-run) failed (exit-code)".into()))
    );
    // A failed must-run unit fails the boot even before the target.
    assert!(matches!(judge(&t_down, &[bad], &[]), Some(Err(_))));
    let hook = unit("check.service", "failed", "exit-code");
    assert_eq!(
        judge(&t_down, &[], &[hook]),
        Some(Err(
            "check.service failed, so boot-complete.target was not reached".into()
        ))
    );
    let mut gone = ok;
    gone.load = "not-found".into();
    gone.active = "inactive".into();
    assert!(matches!(judge(&t_up, &[gone], &[]), Some(Err(e)) if e.contains("does not exist")));
    assert_eq!(
        timed_out(&t_up, &[starting], 300),
        "app.service (activating success) not running within 300 s".replace("success", "x")
    );
}

#[test]
fn target_choice() {
    assert_eq!(
        choose_target("boot-complete.target", &[]),
        "multi-user.target"
    );
    assert_eq!(
        choose_target("boot-complete.target", &["check.service".into()]),
        "boot-complete.target"
    );
    assert_eq!(choose_target("graphical.target", &[]), "graphical.target");
}

fn root() -> (tempfile::TempDir, Root) {
    let d = tempfile::tempdir().expect("tempdir");
    let r = Root::new(d.path());
    (d, r)
}

fn success(snapshot: bool) -> ResultRecord {
    let mut r: ResultRecord = serde_json::from_str(
        r#"{"format":1,"id":"u1","title":"t","backend":"dpkg","outcome":"success","stop_requested":false,"packages":[],"started":"x","finished":"y","attempts":1,"error":null,"log":null}"#,
    )
    .expect("record");
    if snapshot {
        let mut s = crate::snapshot::SnapshotRecord::new("btrfs");
        s.name = Some("@.before-u1".into());
        r.snapshot = Some(s);
    }
    r
}

#[test]
fn begin_with_and_without_a_snapshot() {
    let (_d, r) = root();
    let config = Config::default();
    let rec = begin(&r, &config, &success(true)).expect("on probation");
    assert_eq!(
        (rec.verdict, rec.limit, rec.reason),
        (Verdict::Pending, 2, None)
    );
    let st = load(&r).expect("load").expect("state");
    assert!(st.can_roll_back);
    assert_eq!(st.boots, 0);

    let rec = begin(&r, &config, &success(false)).expect("on probation");
    assert!(rec.reason.is_some_and(|w| w.contains("never rolled back")));
    assert!(!load(&r).expect("load").expect("state").can_roll_back);

    let off = Config {
        probation: false,
        ..Config::default()
    };
    end(&r).expect("end");
    assert!(begin(&r, &off, &success(true)).is_none());
    assert!(load(&r).expect("load").is_none());
}

#[test]
fn broken_state_is_reported_and_removed() {
    let (_d, r) = root();
    let p = state_path(&r);
    std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
    std::fs::write(&p, b"{not json").expect("write");
    let stop = AtomicBool::new(false);
    assert_eq!(
        check_boot(&r, &Config::default(), &stop),
        crate::exit::FAILURE
    );
    assert!(!p.exists(), "a broken state is removed, never a loop");
}

#[test]
fn an_id_with_escapes_is_refused_on_load() {
    let (_d, r) = root();
    let p = state_path(&r);
    std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
    let bad = r#"{"id":"u1\u001b[2J\u202e","can_roll_back":true,"boots":0,"limit":2,"since":"x"}"#;
    std::fs::write(&p, bad).expect("write");
    let e = load(&r).expect_err("refused").to_string();
    assert!(e.contains("not a valid id"), "{e}");
    assert!(status_line(&r).is_none());
}

#[test]
fn a_due_rollback_in_a_normal_boot_ends_the_probation() {
    let (_d, r) = root();
    begin(&r, &Config::default(), &success(true)).expect("on probation");
    arm(&r).expect("arm");
    let stop = AtomicBool::new(false);
    assert_eq!(
        check_boot(&r, &Config::default(), &stop),
        crate::exit::FAILURE
    );
    assert!(!is_due(&r));
    assert!(load(&r).expect("load").is_none());
}
