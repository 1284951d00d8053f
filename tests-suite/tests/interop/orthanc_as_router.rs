//! Orthanc as the router under test (`scripts/peers/orthanc/router.lua`), side by side
//! with the embedded simulator: the same instances, sent to the same routes, must come
//! out the same (checks refuse the same instances, morphs write the same values).
//!
//! Orthanc forwards to a second Orthanc (the PACS), where C-FIND checks the result; the
//! simulator keeps what it accepts in its own store. Where Orthanc cannot express a
//! rule (see router.lua), the difference is asserted as such, with the reason.

use std::thread;
use std::time::{Duration, Instant};

use cfind::{CFindClient, InstanceQuery, Key, Query};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dimse::StatusClass;
use loader::synth::{InstanceBuilder, Modality};
use simulator::SimulatorHandle;
use simulator::scu::{ScuError, ScuOptions, StoreScu};
use tests_suite::peers::{OrthancOptions, Peer};

use crate::common::{require_peers, start_simulator};

/// Checked at the destination: every attribute a default rule writes.
const CHECKED: [&str; 8] = [
    "StudyDescription",
    "InstitutionalDepartmentName",
    "StationName",
    "SeriesDescription",
    "StudyDate",
    "AccessionNumber",
    "PatientName",
    "PatientComments",
];

/// One instance sent to one route, and what the default rules make of it.
struct Case {
    name: &'static str,
    called_ae_title: &'static str,
    modality: Modality,
    set: &'static [(&'static str, &'static str)],
    remove: &'static [&'static str],
    /// `None`: refused. `Some`: stored with these values (`""`: absent or empty).
    expect: Option<&'static [(&'static str, &'static str)]>,
}

const CASES: &[Case] = &[
    Case {
        name: "colonoscopy",
        called_ae_title: "LB-HTM-GI",
        modality: Modality::Es,
        set: &[
            ("SeriesDescription", "Colonoscopy Images"),
            ("StationName", "ROOM1"),
            ("PatientComments", "call first"),
        ],
        remove: &[],
        expect: Some(&[
            ("StudyDescription", "Endoscopy Colonoscopy"),
            ("InstitutionalDepartmentName", "Gastroenterology"),
            ("StationName", "GI-ROOM1"),
            ("PatientComments", ""),
        ]),
    },
    Case {
        name: "upper GI",
        called_ae_title: "LB-HTM-GI",
        modality: Modality::Es,
        set: &[("SeriesDescription", "OGD survey")],
        remove: &[],
        expect: Some(&[("StudyDescription", "Endoscopy Upper GI (OGD)")]),
    },
    Case {
        name: "ERCP",
        called_ae_title: "LB-HTM-GI",
        modality: Modality::Es,
        set: &[("SeriesDescription", "ercp run")],
        remove: &[],
        expect: Some(&[("StudyDescription", "Endoscopy ERCP")]),
    },
    Case {
        name: "other endoscopy, series description from protocol",
        called_ae_title: "LB-HTM-GI",
        modality: Modality::Es,
        set: &[("ProtocolName", "Bronchoscopy")],
        remove: &["SeriesDescription"],
        expect: Some(&[
            ("StudyDescription", "Endoscopy General"),
            ("SeriesDescription", "Bronchoscopy"),
        ]),
    },
    Case {
        name: "blank study date filled from series date",
        called_ae_title: "LB-HTM-GI",
        modality: Modality::Es,
        set: &[("StudyDate", ""), ("SeriesDate", "20240105")],
        remove: &[],
        expect: Some(&[("StudyDate", "20240105")]),
    },
    Case {
        name: "accession number normalised",
        called_ae_title: "LB-HTM-GI",
        modality: Modality::Es,
        set: &[("AccessionNumber", "ACC-123/45")],
        remove: &[],
        expect: Some(&[("AccessionNumber", "ACC12345")]),
    },
    Case {
        name: "future study date refused",
        called_ae_title: "LB-HTM-GI",
        modality: Modality::Es,
        set: &[("StudyDate", "29991231")],
        remove: &[],
        expect: None,
    },
    Case {
        name: "impossible study date refused",
        called_ae_title: "LB-HTM-GI",
        modality: Modality::Es,
        set: &[("StudyDate", "20230231")],
        remove: &[],
        expect: None,
    },
    Case {
        name: "visual fields GPA",
        called_ae_title: "LB-HTM-OPH",
        modality: Modality::Opv,
        set: &[("SeriesDescription", "SITA 24-2 GPA")],
        remove: &[],
        expect: Some(&[
            ("StudyDescription", "Visual Fields (VF) GPA"),
            ("InstitutionalDepartmentName", "Ophthalmology"),
        ]),
    },
    Case {
        name: "visual fields",
        called_ae_title: "LB-HTM-OPH",
        modality: Modality::Opv,
        set: &[("SeriesDescription", "SITA 24-2")],
        remove: &[],
        expect: Some(&[("StudyDescription", "Visual Fields (VF)")]),
    },
    Case {
        name: "OCT macula with laterality",
        called_ae_title: "LB-HTM-OPH",
        modality: Modality::Opt,
        set: &[("SeriesDescription", "Macular Cube"), ("Laterality", "R")],
        remove: &[],
        expect: Some(&[
            ("StudyDescription", "OCT Macula"),
            ("SeriesDescription", "Macular Cube (R)"),
        ]),
    },
    Case {
        name: "OCT optic disc",
        called_ae_title: "LB-HTM-OPH",
        modality: Modality::Opt,
        set: &[("SeriesDescription", "RNFL scan")],
        remove: &["Laterality"],
        expect: Some(&[("StudyDescription", "OCT Optic Disc (RNFL)")]),
    },
    Case {
        name: "other OCT",
        called_ae_title: "LB-HTM-OPH",
        modality: Modality::Opt,
        set: &[("SeriesDescription", "Anterior segment")],
        remove: &["Laterality"],
        expect: Some(&[("StudyDescription", "OCT")]),
    },
    Case {
        name: "fundus autofluorescence",
        called_ae_title: "LB-HTM-OPH",
        modality: Modality::Op,
        set: &[("SeriesDescription", "FAF 30")],
        remove: &["Laterality"],
        expect: Some(&[("StudyDescription", "Fundus Autofluorescence")]),
    },
    Case {
        name: "fundus photography",
        called_ae_title: "LB-HTM-OPH",
        modality: Modality::Op,
        set: &[("SeriesDescription", "Color fundus")],
        remove: &["Laterality"],
        expect: Some(&[("StudyDescription", "Fundus Photography")]),
    },
    Case {
        name: "knee radiograph",
        called_ae_title: "LB-HTM-ORTHO",
        modality: Modality::Dx,
        set: &[("BodyPartExamined", "KNEE"), ("PatientName", "DOE^JANE^^")],
        remove: &[],
        expect: Some(&[
            ("StudyDescription", "XR Knee"),
            ("InstitutionalDepartmentName", "Orthopaedics"),
            ("PatientName", "DOE^JANE"),
        ]),
    },
    Case {
        name: "hip radiograph",
        called_ae_title: "LB-HTM-ORTHO",
        modality: Modality::Cr,
        set: &[("BodyPartExamined", "PELVIS")],
        remove: &[],
        expect: Some(&[("StudyDescription", "XR Hip/Pelvis")]),
    },
    Case {
        name: "other body part",
        called_ae_title: "LB-HTM-ORTHO",
        modality: Modality::Dx,
        set: &[("BodyPartExamined", "CHEST")],
        remove: &[],
        expect: Some(&[("StudyDescription", "XR CHEST")]),
    },
    Case {
        name: "unspecified body part",
        called_ae_title: "LB-HTM-ORTHO",
        modality: Modality::Dx,
        set: &[],
        remove: &["BodyPartExamined"],
        expect: Some(&[("StudyDescription", "XR Unspecified")]),
    },
    Case {
        name: "blank study date refused",
        called_ae_title: "LB-HTM-ORTHO",
        modality: Modality::Dx,
        set: &[("StudyDate", "")],
        remove: &[],
        expect: None,
    },
    Case {
        name: "bad accession number refused",
        called_ae_title: "LB-HTM-ORTHO",
        modality: Modality::Dx,
        set: &[("AccessionNumber", "ACC-1")],
        remove: &[],
        expect: None,
    },
    Case {
        name: "missing patient ID refused",
        called_ae_title: "LB-HTM-ORTHO",
        modality: Modality::Dx,
        set: &[("PatientID", "")],
        remove: &[],
        expect: None,
    },
];

/// What a target answered to one C-STORE.
#[derive(Debug)]
enum Answer {
    Status(dimse::Status),
    AssociationRefused(String),
}

fn make(case: &Case) -> DefaultDicomObject {
    let mut builder = InstanceBuilder::new(case.modality);
    for (keyword, value) in case.set {
        builder = builder.set_keyword(keyword, *value);
    }
    for keyword in case.remove {
        builder = builder.remove_keyword(keyword);
    }
    builder
        .build()
        .unwrap_or_else(|e| panic!("case {}: {e}", case.name))
}

fn uid(obj: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|v| v.trim_end_matches('\0').trim().to_string())
        .expect("a UID")
}

fn store(addr: std::net::SocketAddr, called: &str, obj: &DefaultDicomObject) -> Answer {
    let sop_class = uid(obj, tags::SOP_CLASS_UID);
    let explicit = EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let options = ScuOptions {
        calling_ae_title: "DICOM-AUTO".into(),
        called_ae_title: called.into(),
        timeouts: dimse::Timeouts {
            connect: Duration::from_secs(5),
            ..dimse::Timeouts::all(Duration::from_secs(20))
        },
        ..ScuOptions::default()
    };
    let contexts = [(sop_class.clone(), vec![explicit.uid().to_string()])];
    let peer = dimse::PeerAddress::new(addr.ip().to_string(), addr.port());
    let mut scu = match StoreScu::connect(&peer, &options, &contexts) {
        Ok(scu) => scu,
        Err(ScuError::Associate(source)) => {
            return Answer::AssociationRefused(source.to_string());
        }
        Err(e) => panic!("{called}@{addr}: {e}"),
    };
    let (context, _) = scu
        .context_for(&sop_class, explicit.uid(), |_| false)
        .expect("a context");
    let mut data = Vec::new();
    obj.write_dataset_with_ts(&mut data, &explicit)
        .expect("encodes");
    let response = scu
        .store(
            context,
            &sop_class,
            &uid(obj, tags::SOP_INSTANCE_UID),
            &data,
        )
        .unwrap_or_else(|e| panic!("C-STORE to {called}@{addr}: {e}"));
    let _ = scu.release();
    Answer::Status(response.status)
}

fn text(obj: &InMemDicomObject, keyword: &str) -> String {
    use dicom_core::dictionary::DataDictionary;
    let tag = dicom_dictionary_std::StandardDataDictionary
        .by_name(keyword)
        .map(|e| e.tag.inner())
        .unwrap_or_else(|| panic!("{keyword} is not a keyword"));
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|v| v.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

/// The attributes the simulator stored for an instance.
fn at_simulator(
    simulator: &SimulatorHandle,
    sop_instance_uid: &str,
) -> Option<Vec<(String, String)>> {
    let stored = simulator.stored_instance(sop_instance_uid)?;
    let dataset = stored.dataset.expect("full store mode keeps the data set");
    Some(
        CHECKED
            .iter()
            .map(|k| (k.to_string(), text(&dataset, k)))
            .collect(),
    )
}

/// The attributes the PACS behind Orthanc answers for an instance, waiting for the
/// forward (Orthanc answers the C-STORE before it forwards).
fn at_pacs(
    pacs: &CFindClient,
    study: &str,
    sop_instance_uid: &str,
    wait: Duration,
) -> Option<Vec<(String, String)>> {
    let keys: Vec<Key> = CHECKED
        .iter()
        .map(|k| Key::parse(k).expect("a keyword"))
        .collect();
    let query = InstanceQuery::in_study(study).with_return_keys(keys);
    let deadline = Instant::now() + wait;
    loop {
        let found = pacs.find(&query).expect("C-FIND at the PACS");
        if let Some(image) = found
            .matches
            .iter()
            .find(|i| i.sop_instance_uid == sop_instance_uid)
        {
            return Some(
                CHECKED
                    .iter()
                    .map(|k| {
                        (
                            k.to_string(),
                            image
                                .identifier
                                .get_by_name(k)
                                .unwrap_or_default()
                                .trim()
                                .to_string(),
                        )
                    })
                    .collect(),
            );
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn check_values(target: &str, case: &Case, got: &[(String, String)], want: &[(&str, &str)]) {
    for (keyword, value) in want {
        let actual = got
            .iter()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        assert_eq!(actual, *value, "{target}, case '{}': {keyword}", case.name);
    }
}

struct Router {
    _pacs_peer: Peer,
    router: Peer,
    pacs: CFindClient,
}

fn start_orthanc_router() -> Router {
    let pacs_peer = Peer::orthanc(&OrthancOptions {
        ae_title: "PACS".into(),
        overwrite: true,
        ..OrthancOptions::default()
    })
    .unwrap();
    let router = Peer::orthanc(&OrthancOptions {
        ae_title: "ROUTER".into(),
        router_destination: Some(("PACS".into(), pacs_peer.addr())),
        ..OrthancOptions::default()
    })
    .unwrap();
    let pacs = CFindClient::builder("127.0.0.1", pacs_peer.port())
        .called_ae_title("PACS")
        .calling_ae_title("DICOM-AUTO")
        .dimse_timeout(Duration::from_secs(10))
        .query_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Router {
        _pacs_peer: pacs_peer,
        router,
        pacs,
    }
}

#[test]
fn orthanc_router_and_simulator_apply_the_same_default_checks_and_morphs() {
    require_peers();
    let simulator = start_simulator();
    let orthanc = start_orthanc_router();
    let mut refused_at_orthanc = Vec::new();
    for case in CASES {
        let obj = make(case);
        let sop = uid(&obj, tags::SOP_INSTANCE_UID);
        let study = uid(&obj, tags::STUDY_INSTANCE_UID);

        let at_sim = store(simulator.addr(), case.called_ae_title, &obj);
        let at_orthanc = store(orthanc.router.addr(), case.called_ae_title, &obj);
        match case.expect {
            Some(want) => {
                for (target, answer) in [("simulator", &at_sim), ("Orthanc", &at_orthanc)] {
                    assert!(
                        matches!(answer, Answer::Status(s) if s.class() == StatusClass::Success),
                        "{target}, case '{}': {answer:?}",
                        case.name
                    );
                }
                let sim_values = at_simulator(&simulator, &sop).expect("stored by the simulator");
                check_values("simulator", case, &sim_values, want);
                let pacs_values = at_pacs(&orthanc.pacs, &study, &sop, Duration::from_secs(20))
                    .unwrap_or_else(|| {
                        panic!(
                            "case '{}': not forwarded by Orthanc; router log:\n{}",
                            case.name,
                            orthanc.router.log()
                        )
                    });
                check_values("Orthanc", case, &pacs_values, want);
                // Beyond the expectations, both targets agree on every checked value.
                assert_eq!(
                    sim_values, pacs_values,
                    "case '{}': simulator vs Orthanc",
                    case.name
                );
            }
            None => {
                assert!(
                    matches!(at_sim, Answer::Status(s) if s.class() == StatusClass::Failure),
                    "simulator, case '{}': {at_sim:?}",
                    case.name
                );
                // Orthanc refuses with 0xA700 whatever status the rule gives: the class
                // is what both share.
                assert!(
                    matches!(at_orthanc, Answer::Status(s) if s.code() == 0xA700),
                    "Orthanc, case '{}': {at_orthanc:?}",
                    case.name
                );
                assert!(!simulator.contains_instance(&sop), "case '{}'", case.name);
                refused_at_orthanc.push((case.name, study, sop));
            }
        }
    }
    // Everything accepted has been seen at the PACS by now: a refused instance would
    // have had the same time to arrive.
    for (name, study, sop) in refused_at_orthanc {
        assert!(
            at_pacs(&orthanc.pacs, &study, &sop, Duration::ZERO).is_none(),
            "case '{name}': refused yet forwarded"
        );
    }
}

#[test]
fn an_unknown_called_ae_title_is_refused_by_the_simulator_association_and_by_each_orthanc_store() {
    require_peers();
    let simulator = start_simulator();
    let orthanc = start_orthanc_router();
    let obj = make(&CASES[0]);
    let at_sim = store(simulator.addr(), "NOT-A-ROUTE", &obj);
    assert!(
        matches!(&at_sim, Answer::AssociationRefused(why) if why.contains("called AE title not recognized")),
        "{at_sim:?}"
    );
    // Orthanc has no association hook in Lua: it accepts the association and fails
    // every C-STORE on it.
    let at_orthanc = store(orthanc.router.addr(), "NOT-A-ROUTE", &obj);
    assert!(
        matches!(at_orthanc, Answer::Status(s) if s.code() == 0xA700),
        "{at_orthanc:?}"
    );
}

#[test]
fn duplicates_keep_the_first_copy_on_gi_and_the_last_on_oph_at_both_targets() {
    require_peers();
    let simulator = start_simulator();
    let orthanc = start_orthanc_router();
    for (route, modality, keeps_first) in [
        ("LB-HTM-GI", Modality::Es, true),
        ("LB-HTM-OPH", Modality::Op, false),
    ] {
        let first = InstanceBuilder::new(modality)
            .set_keyword("ProtocolName", "first copy")
            .remove_keyword("SeriesDescription")
            .build()
            .unwrap();
        let mut second = first.clone();
        second.put_str(tags::PROTOCOL_NAME, dicom_core::VR::LO, "second copy");
        let sop = uid(&first, tags::SOP_INSTANCE_UID);
        let study = uid(&first, tags::STUDY_INSTANCE_UID);
        let want = if keeps_first {
            "first copy"
        } else {
            "second copy"
        };
        for obj in [&first, &second] {
            for (target, addr) in [
                ("simulator", simulator.addr()),
                ("Orthanc", orthanc.router.addr()),
            ] {
                let answer = store(addr, route, obj);
                // Neither answers a duplicate with a warning (Orthanc cannot).
                assert!(
                    matches!(answer, Answer::Status(s) if s.class() == StatusClass::Success),
                    "{target} {route}: {answer:?}"
                );
            }
        }
        // The GI route copies ProtocolName into the empty SeriesDescription; OPH does not.
        let key = if keeps_first {
            "SeriesDescription"
        } else {
            "ProtocolName"
        };
        let stored = simulator.stored_instance(&sop).unwrap().dataset.unwrap();
        assert_eq!(text(&stored, key), want, "simulator {route}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let query = InstanceQuery::in_study(&study).with_return_key(Key::parse(key).unwrap());
        loop {
            let found = orthanc.pacs.find(&query).unwrap();
            let value = found
                .matches
                .iter()
                .find(|i| i.sop_instance_uid == sop)
                .and_then(|i| i.identifier.get_by_name(key).map(|v| v.trim().to_string()));
            if value.as_deref() == Some(want) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Orthanc {route}: {key} is {value:?}, want {want}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The destination sink behind Orthanc as router: every instance a route accepts is
/// compared, element by element, with what was sent. What Orthanc is allowed to change
/// is exactly what the route's rules touch (the simulator's default rules, which
/// router.lua mirrors: StudyDate filled, AccessionNumber normalised, the morphs'
/// attributes): anything else it changes (its modify and store-straight rewrite the
/// file) is reported as a difference and fails here, and so would an instance it lost
/// or delivered twice.
#[test]
fn orthanc_delivers_to_the_sink_changing_only_what_its_routes_check_and_morph() {
    use sink::{
        ExpectedSend, Ledger, LedgerOptions, OriginalSource, SentInstance, Sink, SinkOptions,
    };
    require_peers();
    let rules = simulator::Rules::default_rules();
    let mut options = LedgerOptions::new();
    for route in ["LB-HTM-GI", "LB-HTM-OPH", "LB-HTM-ORTHO"] {
        options = options.route_policy(
            route,
            campaign::delivery::route_policy(rules.route_for(route)),
        );
    }
    let ledger = Ledger::new(options);
    let sink = Sink::start(
        SinkOptions::new().read_timeout(Duration::from_secs(30)),
        ledger.clone(),
    )
    .expect("the sink starts on loopback");
    let router = Peer::orthanc(&OrthancOptions {
        ae_title: "ROUTER".into(),
        router_destination: Some((sink.ae_title().as_str().to_string(), sink.local_addr())),
        ..OrthancOptions::default()
    })
    .unwrap();
    let mut accepted = 0;
    for case in CASES {
        let obj = make(case);
        let original = SentInstance::from_object(obj.clone()).expect("a trackable original");
        let ticket = ledger
            .expect(ExpectedSend {
                original: ledger.add_original(OriginalSource::Loaded(original)),
                substitutions: Vec::new(),
                route: case.called_ae_title.into(),
                trace: None,
            })
            .unwrap();
        let outcome = match store(router.addr(), case.called_ae_title, &obj) {
            Answer::Status(s) if s.class() == StatusClass::Success => {
                accepted += 1;
                sender::Outcome::Success
            }
            Answer::Status(s) if s.class() == StatusClass::Warning => sender::Outcome::Warning,
            _ => sender::Outcome::Failure,
        };
        ledger.answered(ticket, outcome, Instant::now());
    }
    let report = ledger.settle(Duration::from_secs(30));
    let c = &report.counts;
    assert!(report.consistent, "{}", c.invariant());
    assert_eq!(
        c.delivered,
        accepted,
        "{}; router log:\n{}",
        c.invariant(),
        router.log()
    );
    assert_eq!(c.refused, CASES.len() as u64 - accepted);
    assert!(
        report.clean,
        "Orthanc changed what no rule names, or lost or repeated an instance: {}; {:#?}",
        campaign::checks::delivery_at_sink(&report).message,
        report.problems
    );
    assert_eq!(sink.stats().stores, accepted);
}
