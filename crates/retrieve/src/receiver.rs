//! Who takes what a retrieve brings: the instances of a C-GET, and the progress of
//! either method.

use std::time::{Duration, Instant};

use dimse::{Status, SubOperations};

/// One instance a C-GET brought back, as its C-STORE sub-operation carried it.
#[derive(Clone, Debug)]
pub struct ReceivedInstance {
    /// When its last byte arrived.
    pub at: Instant,
    /// Affected SOP Class UID of the C-STORE-RQ.
    pub sop_class_uid: String,
    /// Affected SOP Instance UID of the C-STORE-RQ.
    pub sop_instance_uid: String,
    /// The transfer syntax of its presentation context.
    pub transfer_syntax: String,
    /// The data set, encoded in `transfer_syntax`.
    pub data: Vec<u8>,
}

/// Where a retrieve stands, after each response or instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The counts of the latest pending response.
    pub counts: SubOperations,
    /// Instances received on this association so far (C-GET).
    pub received: u64,
    /// Bytes of data set received so far (C-GET).
    pub received_bytes: u64,
    /// Since the request went out.
    pub elapsed: Duration,
}

/// The consumer of a retrieve: it answers each C-GET instance with the status our
/// C-STORE-RSP carries, and sees the progress (a progress bar, a ledger).
pub trait Receiver {
    /// Takes one instance; the status returned is the C-STORE-RSP's. The default
    /// refuses (0xA700: out of resources), which is right for a receiver that only
    /// expects C-MOVE, where no instance comes on this association.
    fn instance(&mut self, instance: ReceivedInstance) -> Status {
        let _ = instance;
        Status::OUT_OF_RESOURCES
    }

    /// Called after every pending response and every instance.
    fn progress(&mut self, progress: &Progress) {
        let _ = progress;
    }
}

/// A receiver that accepts every instance and keeps nothing: counts only.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl Receiver for Discard {
    fn instance(&mut self, _instance: ReceivedInstance) -> Status {
        Status::SUCCESS
    }
}

/// Any closure taking an instance and returning the C-STORE status is a receiver.
impl<F: FnMut(ReceivedInstance) -> Status> Receiver for F {
    fn instance(&mut self, instance: ReceivedInstance) -> Status {
        self(instance)
    }
}
