package io.keywarden.delivery;

import io.keywarden.attestation.Attestation;

/**
 * Told of every access decision before the caller sees it (the audit ledger records it then).
 * An exception thrown here denies the access: nothing is served that was not recorded.
 */
public interface AccessListener {
    AccessListener NONE = new AccessListener() {
        @Override
        public void granted(Attestation.Identified who, String key, String file, IssuedKey issued) {
        }

        @Override
        public void denied(Attestation who, String key, String file, Decision.Refusal code, String reason) {
        }
    };

    /** {@code issued} is null for files that carry no key ({@code spiffe_id}, {@code status}). */
    void granted(Attestation.Identified who, String key, String file, IssuedKey issued);

    /** Nothing was served: {@code code} says why in a word, {@code reason} in a sentence. */
    void denied(Attestation who, String key, String file, Decision.Refusal code, String reason);
}
