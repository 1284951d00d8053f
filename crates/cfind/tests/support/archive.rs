//! The synthetic archive the tests and the benchmark store into real peers (the
//! simulator, DCMTK's dcmqrscp) and then query: studies of a few series of a few
//! Secondary Capture instances, with predictable patients, dates and modalities.

#![allow(dead_code)]

use dicom_dictionary_std::uids;

/// One instance of a synthetic study.
#[derive(Clone, Debug)]
pub struct ArchiveInstance {
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub instance_number: u32,
}

/// One series of a synthetic study.
#[derive(Clone, Debug)]
pub struct ArchiveSeries {
    pub series_instance_uid: String,
    pub modality: String,
    pub series_number: u32,
    pub series_description: String,
    pub instances: Vec<ArchiveInstance>,
}

/// A synthetic study: what the tests store into a peer and then look for.
#[derive(Clone, Debug)]
pub struct ArchiveStudy {
    pub study_instance_uid: String,
    pub patient_id: String,
    pub patient_name: String,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub study_description: String,
    pub referring_physician_name: String,
    pub series: Vec<ArchiveSeries>,
}

impl ArchiveStudy {
    /// Study `n` of a synthetic archive: `series` series of `per_series` instances,
    /// modality CT for even series and MR for odd ones, patient `PID-{n % 10}`, dated
    /// in January 2024 (day `1 + n % 28`).
    pub fn synthetic(n: usize, series: usize, per_series: usize) -> Self {
        let study_instance_uid = format!("1.2.826.0.1.3680043.8.498.{}", 10_000_000 + n);
        ArchiveStudy {
            patient_id: format!("PID-{}", n % 10),
            patient_name: format!("Test^Patient{}", n % 10),
            study_date: format!("202401{:02}", 1 + n % 28),
            study_time: "101500".into(),
            accession_number: format!("ACC{n:06}"),
            study_description: format!("Study {n}"),
            referring_physician_name: "Ref^Doctor".into(),
            series: (0..series)
                .map(|s| ArchiveSeries {
                    series_instance_uid: format!("{study_instance_uid}.{}", s + 1),
                    modality: if s % 2 == 0 { "CT" } else { "MR" }.into(),
                    series_number: (s + 1) as u32,
                    series_description: format!("Series {}", s + 1),
                    instances: (0..per_series)
                        .map(|i| ArchiveInstance {
                            sop_instance_uid: format!("{study_instance_uid}.{}.{}", s + 1, i + 1),
                            sop_class_uid: uids::SECONDARY_CAPTURE_IMAGE_STORAGE.into(),
                            instance_number: (i + 1) as u32,
                        })
                        .collect(),
                })
                .collect(),
            study_instance_uid,
        }
    }

    pub fn instance_count(&self) -> usize {
        self.series.iter().map(|s| s.instances.len()).sum()
    }
}
