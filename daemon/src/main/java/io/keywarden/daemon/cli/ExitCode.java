package io.keywarden.daemon.cli;

/** Exit codes of every command, as PRODUCT.md fixes them. */
public final class ExitCode {
    public static final int OK = 0;
    /** The check failed (e.g. a broken ledger). */
    public static final int CHECK_FAILED = 1;
    /** Bad input or usage. */
    public static final int BAD_INPUT = 2;
    /** Runtime failure. */
    public static final int RUNTIME = 3;

    private ExitCode() {
    }
}
