//! The BC-AMI smart contract: meter provisioning, registration, validated readings, MDMS release
