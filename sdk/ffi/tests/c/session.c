/* A C meter opening an authenticated session with a head-end through libbcami. It talks line by
 * line over stdin/stdout (hex), so the Rust test plays the head-end:
 *   out "init <hex>"        in "response <hex>"
 *   out "confirm <hex>"     out "sealed <hex>" (a reading report sealed for the head-end)
 *   in "command <hex>"      out "opened <hex>" (the command's plaintext)
 *   out "replay <code>"     (opening the same command again must fail: BCAMI_RESULT_REPLAYED)
 *   out "tampered <code>"   (a command with one bit flipped must fail: BCAMI_RESULT_DECRYPT_FAILED)
 * Usage: session <head-end id, 64 hex digits> <head-end public key, 66 hex digits>
 * Exit status: 0 on success, 1 on a wrong usage or input, 2 on an unexpected result code. */
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

static void print_hex(const char *label, const uint8_t *data, size_t len) {
    printf("%s ", label);
    for (size_t i = 0; i < len; i++) printf("%02x", data[i]);
    printf("\n");
    fflush(stdout);
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

/* Reads "<label> <hex>\n" from stdin into buf; returns the byte length, or 0 on error. */
static size_t read_line(const char *label, uint8_t *buf, size_t cap) {
    static char line[4096];
    if (!fgets(line, sizeof line, stdin)) return 0;
    size_t label_len = strlen(label);
    if (strncmp(line, label, label_len) != 0 || line[label_len] != ' ') return 0;
    char *hex = line + label_len + 1;
    hex[strcspn(hex, "\r\n")] = '\0';
    size_t len = strlen(hex) / 2;
    if (len == 0 || len > cap || !parse_hex(hex, buf, len)) return 0;
    return len;
}

int main(int argc, char **argv) {
    uint8_t head_end_id[BCAMI_HID_LEN], head_end_key[BCAMI_PUBLIC_KEY_LEN];
    if (argc != 3 || !parse_hex(argv[1], head_end_id, sizeof head_end_id) ||
        !parse_hex(argv[2], head_end_key, sizeof head_end_key)) {
        fprintf(stderr, "usage: %s <head-end id hex> <head-end public key hex>\n", argv[0]);
        return 1;
    }

    const char *meter_id = "SM-C-0002";
    uint8_t hid[BCAMI_HID_LEN];
    if (!expect("hid", bcami_hid_from_meter_id((const uint8_t *)meter_id, strlen(meter_id), hid), BCAMI_RESULT_OK))
        return 2;
    /* Firmware would take these from its TRNG; fixed here so the test is reproducible. */
    uint8_t key_entropy[BCAMI_MIN_ENTROPY_LEN], session_entropy[BCAMI_MIN_ENTROPY_LEN];
    for (size_t i = 0; i < sizeof key_entropy; i++) {
        key_entropy[i] = (uint8_t)(0x21 + i);
        session_entropy[i] = (uint8_t)(0x9c ^ (i * 5));
    }
    uint8_t secret_key[BCAMI_SECRET_KEY_LEN], public_key[BCAMI_PUBLIC_KEY_LEN];
    if (!expect("key", bcami_meter_key_from_entropy(key_entropy, sizeof key_entropy, secret_key, public_key),
                BCAMI_RESULT_OK))
        return 2;

    bcami_meter_handshake *handshake = NULL;
    bcami_bytes *init = NULL;
    if (!expect("start",
                bcami_session_meter_start(secret_key, hid, 1700000000000ULL, head_end_id, head_end_key,
                                          session_entropy, sizeof session_entropy, &handshake, &init),
                BCAMI_RESULT_OK))
        return 2;
    print_hex("init", bcami_bytes_data(init), bcami_bytes_len(init));
    bcami_bytes_free(init);

    static uint8_t buf[2048];
    size_t len = read_line("response", buf, sizeof buf);
    if (!len) {
        bcami_meter_handshake_free(handshake);
        return 1;
    }
    bcami_session *session = NULL;
    bcami_bytes *confirm = NULL;
    /* The handshake is consumed here, whatever the result. */
    if (!expect("finish", bcami_session_meter_finish(handshake, secret_key, buf, len, &session, &confirm),
                BCAMI_RESULT_OK))
        return 2;
    print_hex("confirm", bcami_bytes_data(confirm), bcami_bytes_len(confirm));
    bcami_bytes_free(confirm);

    const char *report = "interval 412 Wh";
    const char *aad = "BC-AMI C session test";
    bcami_bytes *sealed = NULL;
    if (!expect("seal",
                bcami_session_seal(session, (const uint8_t *)aad, strlen(aad), (const uint8_t *)report,
                                   strlen(report), &sealed),
                BCAMI_RESULT_OK))
        return 2;
    print_hex("sealed", bcami_bytes_data(sealed), bcami_bytes_len(sealed));
    bcami_bytes_free(sealed);

    len = read_line("command", buf, sizeof buf);
    if (!len) {
        bcami_session_free(session);
        return 1;
    }
    bcami_bytes *opened = NULL;
    if (!expect("open", bcami_session_open(session, (const uint8_t *)aad, strlen(aad), buf, len, &opened),
                BCAMI_RESULT_OK))
        return 2;
    print_hex("opened", bcami_bytes_data(opened), bcami_bytes_len(opened));
    bcami_bytes_free(opened);

    bcami_bytes *again = NULL;
    bcami_result replay = bcami_session_open(session, (const uint8_t *)aad, strlen(aad), buf, len, &again);
    printf("replay %u\n", (unsigned)replay);
    bcami_bytes_free(again); /* NULL: nothing is written on failure */

    buf[len - 1] ^= 1;
    buf[9] += 1; /* a fresh sequence number, so the tag check is what refuses it */
    bcami_result tampered = bcami_session_open(session, (const uint8_t *)aad, strlen(aad), buf, len, &again);
    printf("tampered %u\n", (unsigned)tampered);
    fflush(stdout);
    bcami_bytes_free(again);
    bcami_session_free(session);
    return 0;
}
