package io.keywarden.attestation;

/** The process exited (or its /proc entry cannot be read) while it was being attested. */
public class ProcessGoneException extends Exception {
    private static final long serialVersionUID = 1L;

    public ProcessGoneException(int pid, String why) {
        super("process " + pid + " " + why, null, false, false);
    }
}
