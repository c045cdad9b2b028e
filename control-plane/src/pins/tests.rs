use super::*;
use crate::fsutil::test_dir;

fn h(c: char) -> String {
    c.to_string().repeat(64)
}

fn listed(name: &str, sha: char) -> ToolSeen {
    ToolSeen {
        name: name.into(),
        sha256: Some(h(sha)),
        fields: BTreeMap::new(),
        description: Some(format!("{name} things")),
        suspicious: None,
    }
}

fn called(name: &str) -> ToolSeen {
    ToolSeen {
        name: name.into(),
        sha256: None,
        fields: BTreeMap::new(),
        description: None,
        suspicious: None,
    }
}

fn filing(server: &str, tools: Vec<ToolSeen>) -> PinFiling {
    PinFiling {
        nonce: "r.list".into(),
        request_id: "r".into(),
        agent_id: "bot".into(),
        server: server.into(),
        tools,
    }
}

fn verdicts(book: &PinBook, server: &str, tools: Vec<ToolSeen>) -> Vec<PinVerdict> {
    let filing = filing(server, tools);
    let (answer, _) = book.file(&filing, 1_000).unwrap();
    assert!(answer.answers(&filing));
    filing
        .tools
        .iter()
        .map(|t| answer.verdict(&t.name))
        .collect()
}

use PinVerdict::{Changed, Pinned, Suspicious, Unknown};

#[test]
fn first_use_pins_and_a_change_waits_for_an_operator() {
    let dir = test_dir("pins-tofu");
    let book = PinBook::open(&dir.join("pins.json")).unwrap();
    assert_eq!(verdicts(&book, "/mcp", vec![called("search")]), [Unknown]);
    let (answer, audited) = book
        .file(
            &filing("/mcp", vec![listed("search", 'a'), listed("rm", 'b')]),
            5,
        )
        .unwrap();
    assert_eq!(answer.verdict("search"), Pinned);
    assert_eq!(
        audited.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        ["pinned", "pinned"]
    );
    assert_eq!(verdicts(&book, "/mcp", vec![called("search")]), [Pinned]);
    // The same definition again: nothing changes, nothing to audit.
    let (_, audited) = book
        .file(&filing("/mcp", vec![listed("search", 'a')]), 6)
        .unwrap();
    assert!(audited.is_empty());

    // `rm` changes: held back from lists and calls, audited once.
    let (answer, audited) = book
        .file(&filing("/mcp", vec![listed("rm", 'c')]), 7)
        .unwrap();
    assert_eq!(answer.verdict("rm"), Changed);
    assert_eq!(audited[0].outcome, "changed");
    assert_eq!(audited[0].previous_sha256, Some(h('b')));
    assert_eq!(audited[0].agent_id.as_deref(), Some("bot"));
    assert_eq!(verdicts(&book, "/mcp", vec![called("rm")]), [Changed]);
    let (_, audited) = book
        .file(&filing("/mcp", vec![listed("rm", 'c')]), 8)
        .unwrap();
    assert!(audited.is_empty(), "the same change is audited once");
    // Going back to the pinned definition does not end the wait.
    assert_eq!(verdicts(&book, "/mcp", vec![listed("rm", 'b')]), [Changed]);

    let approved = book.approve("/mcp", "rm", None, "alice", 9).unwrap();
    assert_eq!(
        (approved.outcome, approved.by.as_deref()),
        ("approved", Some("alice"))
    );
    assert_eq!(approved.sha256, Some(h('c')));
    assert_eq!(
        verdicts(&book, "/mcp", vec![listed("rm", 'c'), called("rm")]),
        [Pinned, Pinned]
    );
    assert_eq!(
        verdicts(&book, "/mcp", vec![listed("rm", 'b')]),
        [Changed],
        "the old one is a change now"
    );
    assert!(matches!(
        book.approve("/mcp", "search", None, "alice", 10),
        Err(PinError::NothingPending { .. })
    ));
}

#[test]
fn pins_are_per_server_and_outlive_a_restart() {
    let dir = test_dir("pins-restart");
    let path = dir.join("pins.json");
    {
        let book = PinBook::open(&path).unwrap();
        verdicts(&book, "/mcp/a", vec![listed("search", 'a')]);
        assert_eq!(
            verdicts(&book, "/mcp/b", vec![listed("search", 'b')]),
            [Pinned]
        );
        book.file(&filing("/mcp/a", vec![listed("search", 'c')]), 2)
            .unwrap();
    }
    let book = PinBook::open(&path).unwrap();
    assert_eq!(verdicts(&book, "/mcp/a", vec![called("search")]), [Changed]);
    assert_eq!(verdicts(&book, "/mcp/b", vec![called("search")]), [Pinned]);
    let listed_now = book.list();
    assert_eq!(
        listed_now["/mcp/a"]["search"].pinned_by.as_deref(),
        Some(FIRST_USE)
    );

    std::fs::write(&path, b"{not json").unwrap();
    let error = PinBook::open(&path).err().unwrap().to_string();
    assert!(
        error.contains("pins.json") && error.contains("move it aside"),
        "{error}"
    );
}

#[test]
fn flagged_tools_and_lookalikes_of_pinned_names_wait_from_the_start() {
    let dir = test_dir("pins-suspicious");
    let book = PinBook::open(&dir.join("pins.json")).unwrap();
    let mut poisoned = listed("add", 'a');
    poisoned.suspicious = Some("the firewall flagged its definition (exfiltration)".into());
    assert_eq!(
        verdicts(&book, "/mcp", vec![poisoned, listed("read_file", 'b')]),
        [Suspicious, Pinned]
    );
    assert_eq!(verdicts(&book, "/mcp", vec![called("add")]), [Suspicious]);
    for lookalike in ["read-file", "readFile", "read_fiIe\u{200b}", "rеad_file"] {
        let verdict = verdicts(&book, "/mcp", vec![listed(lookalike, 'c')]);
        let skeletons_equal = folds(lookalike)
            .iter()
            .any(|f| folds("read_file").contains(f));
        if skeletons_equal {
            assert_eq!(verdict, [Suspicious], "{lookalike}");
        }
    }
    let waiting = book.list()["/mcp"]["readFile"].waiting.clone().unwrap();
    assert!(waiting.why.unwrap().contains("its name looks like `read"));
    // An operator may still approve one.
    book.approve("/mcp", "add", None, "bob", 3).unwrap();
    assert_eq!(verdicts(&book, "/mcp", vec![called("add")]), [Pinned]);
}

#[test]
fn the_book_is_bounded_and_refuses_what_it_must_not_keep() {
    let dir = test_dir("pins-bounds");
    let book = PinBook::open(&dir.join("pins.json")).unwrap();
    for i in 0..MAX_SERVERS {
        verdicts(&book, &format!("/mcp/{i}"), vec![listed("t", 'a')]);
    }
    assert_eq!(
        verdicts(&book, "/mcp/one-more", vec![listed("t", 'a')]),
        [Unknown]
    );
    assert!(!book.list().contains_key("/mcp/one-more"));
    // A server no filing pins is not kept either.
    book.forget("/mcp/0", None, None, "ops").unwrap();
    assert_eq!(verdicts(&book, "/mcp/x", vec![called("t")]), [Unknown]);
    assert!(!book.list().contains_key("/mcp/x"));

    let bad_hash = ToolSeen {
        sha256: Some("zz".into()),
        ..listed("t", 'a')
    };
    let too_many: Vec<ToolSeen> = (0..=MAX_TOOLS)
        .map(|i| listed(&format!("t{i}"), 'a'))
        .collect();
    for tools in [vec![bad_hash], vec![listed("", 'a')], too_many] {
        assert!(matches!(
            book.file(&filing("/mcp/1", tools), 1),
            Err(PinError::Malformed(_))
        ));
    }
}

#[test]
fn forgetting_trusts_the_next_definition_on_first_use_again() {
    let dir = test_dir("pins-forget");
    let book = PinBook::open(&dir.join("pins.json")).unwrap();
    verdicts(&book, "/mcp", vec![listed("a", '1'), listed("b", '2')]);
    verdicts(&book, "/mcp", vec![listed("a", '3')]);
    let forgotten = book.forget("/mcp", Some("a"), None, "ops").unwrap();
    assert_eq!(
        (forgotten.outcome, forgotten.tool.as_deref()),
        ("forgotten", Some("a"))
    );
    assert_eq!(verdicts(&book, "/mcp", vec![listed("a", '3')]), [Pinned]);
    assert!(matches!(
        book.forget("/mcp", Some("zz"), None, "ops"),
        Err(PinError::NotPinned { .. })
    ));
    book.forget("/mcp", None, None, "ops").unwrap();
    assert!(book.list().is_empty());
}

/// The hold of definition `sha` that began at `since_ms`.
fn offered(sha: char, since_ms: u64) -> Offered {
    Offered {
        sha256: h(sha),
        since_ms,
    }
}

#[test]
fn a_decision_bound_to_an_offered_definition_applies_only_while_it_waits() {
    let dir = test_dir("pins-offered");
    let book = PinBook::open(&dir.join("pins.json")).unwrap();
    verdicts(&book, "/mcp", vec![listed("rm", 'a')]);
    verdicts(&book, "/mcp", vec![listed("rm", 'b')]);
    // Decided on 'b', but the server changed again: 'c' waits now, and
    // neither approve nor forget of 'b' lands.
    verdicts(&book, "/mcp", vec![listed("rm", 'c')]);
    let waiting = |book: &PinBook| {
        book.list()["/mcp"]["rm"]
            .waiting
            .as_ref()
            .map(|w| w.definition.sha256.clone())
    };
    assert_eq!(waiting(&book), Some(h('c')));
    assert!(matches!(
        book.approve("/mcp", "rm", Some(&offered('b', 1_000)), "alice", 9),
        Err(PinError::Stale { .. })
    ));
    assert!(matches!(
        book.forget("/mcp", Some("rm"), Some(&offered('b', 1_000)), "alice"),
        Err(PinError::Stale { .. })
    ));
    assert_eq!(waiting(&book), Some(h('c')));
    assert_eq!(
        book.list()["/mcp"]["rm"].pinned.as_ref().unwrap().sha256,
        h('a')
    );
    let approved = book
        .approve("/mcp", "rm", Some(&offered('c', 1_000)), "alice", 9)
        .unwrap();
    assert_eq!(approved.sha256, Some(h('c')));
    // Decided: the same decision again finds nothing waiting.
    assert!(matches!(
        book.approve("/mcp", "rm", Some(&offered('c', 1_000)), "alice", 10),
        Err(PinError::NothingPending { .. })
    ));
    assert!(matches!(
        book.forget("/mcp", Some("rm"), Some(&offered('c', 1_000)), "alice"),
        Err(PinError::NothingPending { .. })
    ));
    assert_eq!(
        book.list()["/mcp"]["rm"].pinned.as_ref().unwrap().sha256,
        h('c')
    );
}

#[test]
fn a_decision_lands_on_the_hold_it_was_about_never_on_a_later_one() {
    // Approved on the Cloud ('b', held at 2) and applied; the settle was
    // lost and the control plane restarted, so the Cloud delivers it again
    // much later, when 'b' waits again after 'c' was approved by hand.
    let dir = test_dir("pins-held-again");
    let book = PinBook::open(&dir.join("pins.json")).unwrap();
    let list = |sha: char, at: u64| {
        book.file(&filing("/mcp", vec![listed("rm", sha)]), at)
            .unwrap()
    };
    list('a', 1);
    list('b', 2);
    book.approve("/mcp", "rm", Some(&offered('b', 2)), "alice", 3)
        .unwrap();
    list('c', 4);
    book.approve("/mcp", "rm", None, "bob", 5).unwrap();
    list('b', 6);
    for decided in [
        book.approve("/mcp", "rm", Some(&offered('b', 2)), "alice", 7),
        book.forget("/mcp", Some("rm"), Some(&offered('b', 2)), "alice"),
    ] {
        assert!(
            matches!(decided, Err(PinError::HeldAgain { since_ms: 6, .. })),
            "{decided:?}"
        );
    }
    let pin = &book.list()["/mcp"]["rm"];
    assert_eq!(pin.pinned.as_ref().unwrap().sha256, h('c'), "not re-pinned");
    assert_eq!(pin.waiting.as_ref().unwrap().definition.at_ms, 6);
    // The hold now waiting is decided on its own.
    book.approve("/mcp", "rm", Some(&offered('b', 6)), "carol", 8)
        .unwrap();
}
