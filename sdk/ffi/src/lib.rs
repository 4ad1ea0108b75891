//! C ABI for the BC-AMI meter SDK
