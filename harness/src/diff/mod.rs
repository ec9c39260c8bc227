//! The differential permission test (`muc-diff`): generated muc#admin requests sent to stock
//! mod_muc and to muc_rs on the same Prosody, outcomes compared after normalisation.

pub mod cases;
pub mod normal;
pub mod run;
