//! BC-AMI meter SDK core: hashed identities, device keys, ECIES usage reports, the signed transaction format
