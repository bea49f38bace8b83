/*
 * The generated C header of the Swift bindings (roomsealFFI.h), compiled by
 * a C compiler and called through into the static library (libroomseal.a),
 * the way the Swift bindings call it on iOS. scripts/swift-check.sh builds
 * and runs it; Swift itself cannot be compiled on these machines.
 *
 * It checks what the Swift bindings check when they load (the contract
 * version and every API checksum, from checksums.inc, which the script
 * extracts from roomseal.swift), then makes real calls: an encrypt/decrypt
 * round trip, an Endpoint made, called and freed, and a refused constructor
 * whose error arrives as the InvalidInput variant.
 */

/* Clang nullability qualifiers, which Apple's compilers know and gcc does not. */
#define _Nonnull
#define _Nullable
#include "roomsealFFI.h"

#include <stdio.h>
#include <string.h>

enum { CALL_SUCCESS = 0, CALL_ERROR = 1, INVALID_INPUT = 1 };

static int passed;
static int failed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "swift header check FAILED: %s\n", what);
    }
}

/* A Rust-owned buffer holding the UTF-8 bytes of `text`, as Swift lowers a String. */
static RustBuffer string_buffer(const char *text) {
    RustCallStatus status = {0};
    ForeignBytes bytes = {(int32_t)strlen(text), (const uint8_t *)text};
    RustBuffer buffer = ffi_roomseal_rustbuffer_from_bytes(bytes, &status);
    check(status.code == CALL_SUCCESS, "rustbuffer_from_bytes");
    return buffer;
}

static void free_buffer(RustBuffer buffer) {
    RustCallStatus status = {0};
    ffi_roomseal_rustbuffer_free(buffer, &status);
    check(status.code == CALL_SUCCESS, "rustbuffer_free");
}

static void endpoint_calls(void) {
    const char *user = "@c:example.org";
    RustCallStatus status = {0};
    uint64_t endpoint =
        uniffi_roomseal_fn_constructor_endpoint_new(string_buffer(user), string_buffer("C"), &status);
    check(status.code == CALL_SUCCESS && endpoint != 0, "Endpoint constructor");

    /* A method consumes a handle: pass a clone, as the Swift bindings do. */
    uint64_t clone = uniffi_roomseal_fn_clone_endpoint(endpoint, &status);
    check(status.code == CALL_SUCCESS, "clone_endpoint");
    RustBuffer id = uniffi_roomseal_fn_method_endpoint_user_id(clone, &status);
    check(status.code == CALL_SUCCESS && id.len == strlen(user) && id.data != NULL &&
              memcmp(id.data, user, id.len) == 0,
          "Endpoint.userId returns the user id");
    free_buffer(id);
    uniffi_roomseal_fn_free_endpoint(endpoint, &status);
    check(status.code == CALL_SUCCESS, "free_endpoint");

    /* An empty user id is refused: the error buffer holds variant 1 (InvalidInput), big-endian. */
    RustCallStatus refused = {0};
    uniffi_roomseal_fn_constructor_endpoint_new(string_buffer(""), string_buffer("C"), &refused);
    check(refused.code == CALL_ERROR && refused.errorBuf.len >= 4 && refused.errorBuf.data != NULL,
          "an empty user id is refused with CALL_ERROR");
    if (refused.errorBuf.len >= 4 && refused.errorBuf.data != NULL) {
        const uint8_t *b = refused.errorBuf.data;
        uint32_t variant = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
        check(variant == INVALID_INPUT, "the refusal is RoomsealError.InvalidInput");
        free_buffer(refused.errorBuf);
    }
}

int main(void) {
    check(ffi_roomseal_uniffi_contract_version() == EXPECTED_CONTRACT_VERSION,
          "contract version matches roomseal.swift");
#define CHECKSUM(function, expected) check(function() == (expected), #function " matches roomseal.swift");
#include "checksums.inc"
#undef CHECKSUM

    RustCallStatus status = {0};
    double ns = uniffi_roomseal_fn_func_native_event_round_trip_ns(3, &status);
    check(status.code == CALL_SUCCESS && ns > 0, "native_event_round_trip_ns runs an encrypt/decrypt");

    endpoint_calls();

    printf("swift-header: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
