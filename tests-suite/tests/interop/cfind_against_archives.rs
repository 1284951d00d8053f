//! The cfind client against real archives holding the samples: Orthanc and DCMTK
//! dcmqrscp, every query kind, under Study Root and Patient Root.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cfind::{
    CFindClient, Expectation, InformationModel, InstanceQuery, NaiveDate, Polling, Query,
    SentStudy, SeriesQuery, StudyQuery,
};
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use tests_suite::peers::{DcmqrscpOptions, OrthancOptions, Peer};

use crate::common::{require_peers, samples, samples_dir};

/// One study of the samples, as an archive should answer for it.
#[derive(Debug, Default)]
struct ExpectedStudy {
    patient_id: String,
    accession_number: String,
    study_date: String,
    /// SeriesInstanceUID -> (Modality, instances).
    series: BTreeMap<String, (String, usize)>,
}

impl ExpectedStudy {
    fn instances(&self) -> usize {
        self.series.values().map(|(_, n)| n).sum()
    }
}

fn expected_studies() -> BTreeMap<String, ExpectedStudy> {
    let mut studies: BTreeMap<String, ExpectedStudy> = BTreeMap::new();
    for info in samples() {
        let study = studies
            .entry(info.study_instance_uid.clone().expect("StudyInstanceUID"))
            .or_default();
        study.patient_id = info.patient_id.clone().unwrap_or_default();
        study.accession_number = info.accession_number.clone().unwrap_or_default();
        let header = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(&info.path)
            .expect("sample header");
        study.study_date = header
            .get(tags::STUDY_DATE)
            .and_then(|e| e.to_str().ok())
            .map(|d| d.trim().to_string())
            .unwrap_or_default();
        let series = study
            .series
            .entry(info.series_instance_uid.clone().expect("SeriesInstanceUID"))
            .or_insert_with(|| (info.modality.clone().unwrap_or_default(), 0));
        series.1 += 1;
    }
    studies
}

fn date(yyyymmdd: &str) -> NaiveDate {
    NaiveDate::parse_from_str(yyyymmdd, "%Y%m%d").expect("a DA value")
}

/// What an archive does not answer, so the battery leaves it out (said in the name of
/// the test that passes it).
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// dcmqrscp keeps no ModalitiesInStudy: it can neither match nor return it.
    modalities_in_study: bool,
}

/// Runs every query kind of the cfind crate against `peer` under `model` and checks each
/// answer against the samples.
fn check_every_query_kind(peer: &Peer, model: InformationModel, limits: Limits) {
    let client = CFindClient::builder("127.0.0.1", peer.port())
        .called_ae_title(peer.ae_title())
        .calling_ae_title("CFIND-INTEROP")
        .models([model])
        .connect_timeout(Duration::from_secs(5))
        .acse_timeout(Duration::from_secs(10))
        .dimse_timeout(Duration::from_secs(10))
        .query_timeout(Duration::from_secs(30))
        .polling(Polling {
            initial_delay: Duration::ZERO,
            poll_interval: Duration::from_millis(200),
            timeout: Duration::from_secs(10),
        })
        .build()
        .expect("a valid client");
    let expected = expected_studies();
    let context = format!("{:?} under {model}", peer.kind());
    let uids: Vec<&String> = expected.keys().collect();

    let all = client
        .find(&StudyQuery::new().study_instance_uids(&uids))
        .unwrap();
    assert_eq!(all.model, model, "{context}");
    let found: BTreeSet<&str> = all
        .matches
        .iter()
        .map(|s| s.study_instance_uid.as_str())
        .collect();
    assert_eq!(
        found,
        uids.iter().map(|u| u.as_str()).collect(),
        "UID list: {context}"
    );

    for (uid, study) in &expected {
        let one = client
            .find(&StudyQuery::by_study_instance_uid(uid))
            .unwrap();
        assert_eq!(one.len(), 1, "study {uid}: {context}");
        let answer = &one.matches[0];
        assert_eq!(
            answer.patient_id.as_deref(),
            Some(study.patient_id.as_str()),
            "{context}"
        );
        assert_eq!(
            answer.accession_number.as_deref(),
            Some(study.accession_number.as_str()),
            "{context}"
        );
        assert_eq!(
            answer.study_date.as_deref(),
            Some(study.study_date.as_str()),
            "{context}"
        );

        let by_accession = client
            .find(&StudyQuery::new().accession_number(&study.accession_number))
            .unwrap();
        assert_eq!(
            by_accession.len(),
            1,
            "accession {}: {context}",
            study.accession_number
        );

        let series = client.find(&SeriesQuery::in_study(uid)).unwrap();
        let got: BTreeMap<String, String> = series
            .matches
            .iter()
            .map(|s| {
                (
                    s.series_instance_uid.clone(),
                    s.modality.clone().unwrap_or_default(),
                )
            })
            .collect();
        let want: BTreeMap<String, String> = study
            .series
            .iter()
            .map(|(k, (m, _))| (k.clone(), m.clone()))
            .collect();
        assert_eq!(got, want, "series of {uid}: {context}");

        for (series_uid, (modality, count)) in &study.series {
            let by_modality = client
                .find(&SeriesQuery::in_study(uid).modality(modality))
                .unwrap();
            assert!(
                by_modality
                    .matches
                    .iter()
                    .all(|s| s.modality.as_deref() == Some(modality)),
                "{context}"
            );
            assert!(
                by_modality
                    .matches
                    .iter()
                    .any(|s| &s.series_instance_uid == series_uid),
                "{context}"
            );
            let images = client
                .find(&InstanceQuery::in_series(uid, series_uid))
                .unwrap();
            assert_eq!(
                images.len(),
                *count,
                "images of series {series_uid}: {context}"
            );
        }
        let images = client.find(&InstanceQuery::in_study(uid)).unwrap();
        assert_eq!(
            images.len(),
            study.instances(),
            "images of {uid}: {context}"
        );
    }

    let patients: BTreeSet<&str> = expected.values().map(|s| s.patient_id.as_str()).collect();
    for patient in patients {
        let want = expected
            .values()
            .filter(|s| s.patient_id == patient)
            .count();
        let got = client.find(&StudyQuery::by_patient_id(patient)).unwrap();
        assert_eq!(got.len(), want, "studies of {patient}: {context}");
    }

    let (first_uid, first) = expected.iter().next().expect("a study");
    let day = date(&first.study_date);
    let by_dates = client.find(&StudyQuery::by_study_dates(day, day)).unwrap();
    let want = expected
        .values()
        .filter(|s| s.study_date == first.study_date)
        .count();
    assert_eq!(by_dates.len(), want, "studies of {day}: {context}");
    assert!(
        by_dates
            .matches
            .iter()
            .any(|s| &s.study_instance_uid == first_uid),
        "{context}"
    );

    let today = client.find(&StudyQuery::today()).unwrap();
    let today_text = cfind::dicom_date(chrono_today());
    let want = expected
        .values()
        .filter(|s| s.study_date == today_text)
        .count();
    assert_eq!(today.len(), want, "studies of today: {context}");

    if limits.modalities_in_study {
        let modality = first
            .series
            .values()
            .next()
            .map(|(m, _)| m.clone())
            .unwrap();
        let by_modality = client.find(&StudyQuery::by_modality(&modality)).unwrap();
        let want = expected
            .values()
            .filter(|s| s.series.values().any(|(m, _)| *m == modality))
            .count();
        assert_eq!(
            by_modality.len(),
            want,
            "studies with {modality}: {context}"
        );
    }

    let limited = client
        .find(&StudyQuery::new().study_instance_uids(&uids).with_limit(2))
        .unwrap();
    assert_eq!(limited.len(), 2, "limit 2: {context}");
    assert!(limited.truncated, "the rest was cancelled: {context}");

    let all_images = client.find(&InstanceQuery::in_studies(&uids)).unwrap();
    assert_eq!(
        all_images.len(),
        samples().len(),
        "images of every study: {context}"
    );

    let mut session = client.session();
    let sighting = session
        .wait_for_study(
            first_uid,
            &Expectation::visible().at_least_instances(first.instances() as u32),
        )
        .unwrap();
    assert_eq!(sighting.study.study_instance_uid, *first_uid, "{context}");
    let sent: Vec<SentStudy> = expected
        .iter()
        .map(|(uid, s)| SentStudy::new(uid.clone(), s.instances() as u32, Instant::now()))
        .collect();
    let report = session.verify_studies(&sent).unwrap();
    assert!(
        report.all_complete(),
        "{context}: {:?}",
        report.not_complete().collect::<Vec<_>>()
    );
    session.close();
}

fn chrono_today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

#[test]
fn cfind_answers_every_query_kind_from_orthanc_under_both_models() {
    require_peers();
    let orthanc = Peer::orthanc(&OrthancOptions {
        load: vec![samples_dir()],
        ..OrthancOptions::default()
    })
    .unwrap();
    assert_eq!(orthanc.loaded(), samples().len());
    for model in [InformationModel::StudyRoot, InformationModel::PatientRoot] {
        check_every_query_kind(
            &orthanc,
            model,
            Limits {
                modalities_in_study: true,
            },
        );
    }
}

#[test]
fn cfind_answers_every_query_kind_but_modalities_in_study_from_dcmqrscp_under_both_models() {
    require_peers();
    let dcmqrscp = Peer::dcmqrscp(&DcmqrscpOptions {
        load: vec![samples_dir()],
        ..DcmqrscpOptions::default()
    })
    .unwrap();
    assert_eq!(dcmqrscp.loaded(), samples().len());
    for model in [InformationModel::StudyRoot, InformationModel::PatientRoot] {
        check_every_query_kind(
            &dcmqrscp,
            model,
            Limits {
                modalities_in_study: false,
            },
        );
    }
}
