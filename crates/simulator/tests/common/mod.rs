//! Helpers for the simulator's network tests: synthetic instances and a tiny
//! C-ECHO / C-STORE / C-FIND client built on dicom-ul and dimse.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::ClientAssociationOptions;
use dicom_ul::association::ClientAssociation;
use dimse::{Command, Incoming, MessageReader, Priority, Status};

pub const SECONDARY_CAPTURE: &str = uids::SECONDARY_CAPTURE_IMAGE_STORAGE;

/// A small instance: patient, study, series and instance keys plus 4 KB of pixels.
pub fn instance(
    study: &str,
    series: &str,
    sop: &str,
    modality: &str,
    series_description: &str,
) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag, vr, v: &str| obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    put(tags::SOP_CLASS_UID, VR::UI, SECONDARY_CAPTURE);
    put(tags::SOP_INSTANCE_UID, VR::UI, sop);
    put(tags::STUDY_INSTANCE_UID, VR::UI, study);
    put(tags::SERIES_INSTANCE_UID, VR::UI, series);
    put(tags::PATIENT_ID, VR::LO, "PID001");
    put(tags::PATIENT_NAME, VR::PN, "DOE^JANE");
    put(tags::STUDY_DATE, VR::DA, "20240105");
    put(tags::ACCESSION_NUMBER, VR::SH, "ACC001");
    put(tags::MODALITY, VR::CS, modality);
    put(tags::SERIES_DESCRIPTION, VR::LO, series_description);
    put(tags::INSTANCE_NUMBER, VR::IS, "1");
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(vec![7u8; 4096]),
    ));
    obj
}

pub fn encode(obj: &InMemDicomObject) -> Vec<u8> {
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    out
}

/// A test SCU association, over plain TCP or (`connect_tls_with`) TLS.
pub struct Client<S = TcpStream> {
    pub association: ClientAssociation<S>,
    pub reader: MessageReader,
    next_id: u16,
}

/// A TLS test SCU association.
pub type TlsClient = Client<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

pub fn connect(addr: SocketAddr, called: &str) -> Result<Client, dicom_ul::association::Error> {
    connect_as(addr, called, "TEST-SCU")
}

/// The options of every test association: Verification, Secondary Capture and
/// both FIND models, bounded waits.
pub fn options(called: &str, calling: &str) -> ClientAssociationOptions<'static> {
    ClientAssociationOptions::new()
        .calling_ae_title(calling.to_string())
        .called_ae_title(called.to_string())
        .with_presentation_context(uids::VERIFICATION, vec![uids::IMPLICIT_VR_LITTLE_ENDIAN])
        .with_presentation_context(SECONDARY_CAPTURE, vec![uids::EXPLICIT_VR_LITTLE_ENDIAN])
        .with_presentation_context(
            uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND,
            vec![uids::EXPLICIT_VR_LITTLE_ENDIAN],
        )
        .with_presentation_context(
            uids::PATIENT_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND,
            vec![uids::EXPLICIT_VR_LITTLE_ENDIAN],
        )
        .connection_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(10))
        .write_timeout(Duration::from_secs(10))
}

pub fn connect_as(
    addr: SocketAddr,
    called: &str,
    calling: &str,
) -> Result<Client, dicom_ul::association::Error> {
    connect_with(addr, options(called, calling))
}

/// A plain association with these options.
pub fn connect_with(
    addr: SocketAddr,
    options: ClientAssociationOptions<'_>,
) -> Result<Client, dicom_ul::association::Error> {
    let mut association = options.establish(addr)?;
    association.inner_stream().set_nodelay(true).unwrap();
    Ok(Client {
        association,
        reader: MessageReader::new(),
        next_id: 1,
    })
}

/// A TLS association with these options, verifying the server as `localhost`.
pub fn connect_tls_with(
    addr: SocketAddr,
    options: ClientAssociationOptions<'_>,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> Result<TlsClient, dicom_ul::association::Error> {
    let mut association = options
        .server_name("localhost")
        .tls_config(config)
        .establish_tls(addr)?;
    association.inner_stream().sock.set_nodelay(true).unwrap();
    Ok(Client {
        association,
        reader: MessageReader::new(),
        next_id: 1,
    })
}

impl<S> Client<S>
where
    S: std::io::Read + std::io::Write + dicom_ul::association::CloseSocket + 'static,
{
    pub fn context(&self, abstract_syntax: &str) -> Option<u8> {
        self.association
            .presentation_contexts()
            .iter()
            .find(|pc| pc.abstract_syntax == abstract_syntax)
            .map(|pc| pc.id)
    }

    fn id(&mut self) -> u16 {
        self.next_id += 1;
        self.next_id
    }

    pub fn echo(&mut self) -> Result<Status, dimse::DimseError> {
        let id = self.id();
        let pc = self
            .context(uids::VERIFICATION)
            .expect("verification accepted");
        dimse::send_message(&mut self.association, pc, &Command::c_echo_rq(id), None)?;
        self.response()
    }

    fn response(&mut self) -> Result<Status, dimse::DimseError> {
        match self.reader.receive(&mut self.association)? {
            Incoming::Message(m) => Ok(m.command.status.expect("status")),
            other => Err(dimse::DimseError::Protocol(format!("{other:?}"))),
        }
    }

    /// Sends a C-STORE; returns the status and the error comment.
    pub fn store(
        &mut self,
        obj: &InMemDicomObject,
    ) -> Result<(Status, Option<String>), dimse::DimseError> {
        let id = self.id();
        let pc = self.context(SECONDARY_CAPTURE).expect("storage accepted");
        let sop = obj
            .get(tags::SOP_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let rq = Command::c_store_rq(id, SECONDARY_CAPTURE, sop, Priority::Medium);
        dimse::send_message(&mut self.association, pc, &rq, Some(&encode(obj)))?;
        match self.reader.receive(&mut self.association)? {
            Incoming::Message(m) => {
                Ok((m.command.status.expect("status"), m.command.error_comment))
            }
            other => Err(dimse::DimseError::Protocol(format!("{other:?}"))),
        }
    }

    /// Sends a C-FIND and collects the pending identifiers and the final status.
    pub fn find(
        &mut self,
        model: &str,
        identifier: &InMemDicomObject,
    ) -> Result<(Vec<InMemDicomObject>, Status), dimse::DimseError> {
        let id = self.id();
        let pc = self.context(model).expect("find accepted");
        let rq = Command::c_find_rq(id, model, Priority::Medium);
        dimse::send_message(&mut self.association, pc, &rq, Some(&encode(identifier)))?;
        let mut found = Vec::new();
        loop {
            match self.reader.receive(&mut self.association)? {
                Incoming::Message(m) => {
                    let status = m.command.status.expect("status");
                    if status.class() == dimse::StatusClass::Pending {
                        let data = m.data.expect("identifier");
                        found.push(
                            InMemDicomObject::read_dataset_with_ts(
                                &data[..],
                                &EXPLICIT_VR_LITTLE_ENDIAN.erased(),
                            )
                            .unwrap(),
                        );
                    } else {
                        return Ok((found, status));
                    }
                }
                other => return Err(dimse::DimseError::Protocol(format!("{other:?}"))),
            }
        }
    }

    pub fn release(self) {
        self.association.release().unwrap();
    }
}

pub fn query(level: &str, keys: &[(dicom_core::Tag, VR, &str)]) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::QUERY_RETRIEVE_LEVEL,
        VR::CS,
        PrimitiveValue::from(level),
    ));
    for (t, vr, v) in keys {
        let value = if v.is_empty() {
            PrimitiveValue::Empty
        } else {
            PrimitiveValue::from(*v)
        };
        obj.put(DataElement::new(*t, *vr, value));
    }
    obj
}

pub fn text(obj: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

/// Polls `check` every 10 ms for up to 5 s.
pub fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
