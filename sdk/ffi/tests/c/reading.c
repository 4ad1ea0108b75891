/* A C meter: builds a registration and a reading with libbcami and prints them as hex lines
 * ("registration <hex>", "reading <hex>", "rotation <hex>") for the Rust test to verify.
 * Usage: reading <MDMS public key, 66 hex digits>
 * Exit status: 0 on success, 1 on a wrong usage, 2 on an unexpected result code. */
#include <stdio.h>
#include <string.h>

#include "bcami.h"

static int expect(const char *what, bcami_result got, bcami_result want) {
    if (got != want) {
        fprintf(stderr, "%s: got %u (%s), want %u\n", what, (unsigned)got, bcami_result_text(got), (unsigned)want);
        return 0;
    }
    return 1;
}

static void print_hex(const char *label, const bcami_bytes *bytes) {
    const uint8_t *data = bcami_bytes_data(bytes);
    size_t len = bcami_bytes_len(bytes);
    printf("%s ", label);
    for (size_t i = 0; i < len; i++) printf("%02x", data[i]);
    printf("\n");
}

static int parse_hex(const char *text, uint8_t *out, size_t out_len) {
    if (strlen(text) != 2 * out_len) return 0;
    for (size_t i = 0; i < out_len; i++) {
        unsigned byte;
        if (sscanf(text + 2 * i, "%2x", &byte) != 1) return 0;
        out[i] = (uint8_t)byte;
    }
    return 1;
}

int main(int argc, char **argv) {
    uint8_t mdms_public_key[BCAMI_PUBLIC_KEY_LEN];
    if (argc != 2 || !parse_hex(argv[1], mdms_public_key, sizeof mdms_public_key)) {
        fprintf(stderr, "usage: %s <MDMS public key hex>\n", argv[0]);
        return 1;
    }

    const char *meter_id = "SM-C-0001";
    uint8_t hid[BCAMI_HID_LEN];
    if (!expect("hid", bcami_hid_from_meter_id((const uint8_t *)meter_id, strlen(meter_id), hid), BCAMI_RESULT_OK))
        return 2;

    /* Firmware would take this from its TRNG; fixed here so the test is reproducible. */
    uint8_t entropy[BCAMI_MIN_ENTROPY_LEN];
    for (size_t i = 0; i < sizeof entropy; i++) entropy[i] = (uint8_t)(i * 7 + 1);
    uint8_t secret_key[BCAMI_SECRET_KEY_LEN], public_key[BCAMI_PUBLIC_KEY_LEN];
    if (!expect("key", bcami_meter_key_from_entropy(entropy, sizeof entropy, secret_key, public_key), BCAMI_RESULT_OK))
        return 2;

    bcami_bytes *registration = NULL;
    if (!expect("registration",
                bcami_registration_request_build(secret_key, hid, 1700000000000ULL, &registration), BCAMI_RESULT_OK))
        return 2;
    print_hex("registration", registration);
    bcami_bytes_free(registration);

    bcami_usage_report report = {
        .interval_start_ms = 1700000000000ULL,
        .interval_length_s = 1800,
        .energy_wh = 412,
        .cumulative_register_wh = 12345678,
        .quality_flags = 0,
    };
    uint8_t reading_entropy[32];
    for (size_t i = 0; i < sizeof reading_entropy; i++) reading_entropy[i] = (uint8_t)(0xA5 ^ i);
    bcami_bytes *reading = NULL;
    if (!expect("reading",
                bcami_reading_build(secret_key, hid, 1700000001800ULL, &report, mdms_public_key, reading_entropy,
                                    sizeof reading_entropy, &reading),
                BCAMI_RESULT_OK))
        return 2;
    print_hex("reading", reading);
    bcami_bytes_free(reading);

    uint8_t new_entropy[32], new_secret_key[BCAMI_SECRET_KEY_LEN], new_public_key[BCAMI_PUBLIC_KEY_LEN];
    for (size_t i = 0; i < sizeof new_entropy; i++) new_entropy[i] = (uint8_t)(0x3C + i);
    if (!expect("new key", bcami_meter_key_from_entropy(new_entropy, sizeof new_entropy, new_secret_key, new_public_key),
                BCAMI_RESULT_OK))
        return 2;
    bcami_bytes *rotation = NULL;
    if (!expect("rotation", bcami_key_rotation_build(secret_key, new_secret_key, hid, 1700000002000ULL, &rotation),
                BCAMI_RESULT_OK))
        return 2;
    print_hex("rotation", rotation);
    bcami_bytes_free(rotation);

    /* Errors come back as codes, never as crashes. */
    bcami_bytes *none = NULL;
    int ok = 1;
    ok &= expect("short entropy", bcami_meter_key_from_entropy(entropy, 16, secret_key, public_key),
                 BCAMI_RESULT_NOT_ENOUGH_ENTROPY);
    ok &= expect("null out", bcami_registration_request_build(secret_key, hid, 0, NULL), BCAMI_RESULT_NULL_ARGUMENT);
    report.interval_length_s = 0;
    ok &= expect("zero interval",
                 bcami_reading_build(secret_key, hid, 1, &report, mdms_public_key, reading_entropy, 32, &none),
                 BCAMI_RESULT_INVALID_USAGE_REPORT);
    report.interval_length_s = 1800;
    uint8_t bad_key[BCAMI_PUBLIC_KEY_LEN] = {0x04};
    ok &= expect("bad MDMS key", bcami_reading_build(secret_key, hid, 1, &report, bad_key, reading_entropy, 32, &none),
                 BCAMI_RESULT_INVALID_PUBLIC_KEY);
    uint8_t zero_key[BCAMI_SECRET_KEY_LEN] = {0};
    ok &= expect("zero secret key", bcami_meter_public_key(zero_key, public_key), BCAMI_RESULT_INVALID_SECRET_KEY);
    bcami_bytes_free(NULL);
    if (none != NULL || !ok) return 2;
    return 0;
}
