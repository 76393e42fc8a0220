package io.keywarden.daemon.config;

/** A section of the config file read on its own, with the loader's problems and helpers (every error located). */
abstract class ConfigSection {
    protected final ConfigLoader loader;

    ConfigSection(ConfigLoader loader) {
        this.loader = loader;
    }
}
