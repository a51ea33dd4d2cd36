//! Service engine trait, barrier sync and the CLM, EVS, CKPT, BACKUP engines. Filled by issues #3-#6.
