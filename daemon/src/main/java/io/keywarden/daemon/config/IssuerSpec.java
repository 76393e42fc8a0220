package io.keywarden.daemon.config;

import io.keywarden.policy.KeySpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One named issuer instance of the config's {@code issuers:} (or the old single {@code issuer:}
 * block, which becomes one instance named after its provider). A sealed type per issuer type:
 * each knows what a key must say to use it ({@link #keyProblems}) and what its credentials can do
 * ({@link #capabilities}).
 */
public sealed interface IssuerSpec permits IssuerSpec.Vault, IssuerSpec.Dev, IssuerSpec.OpenAiFederation,
        IssuerSpec.AnthropicFederation, IssuerSpec.GcpSts, IssuerSpec.AzureEntra, IssuerSpec.OpenRouterKeys, IssuerSpec.AwsSts,
        IssuerSpec.OpenRouterFederation, IssuerSpec.OktaClientCredentials {

    /** The instance name keys refer to ({@code keys.<k>.issuer}). */
    String name();

    /** The type as written in the config: {@code vault}, {@code dev}. */
    String type();

    Capabilities capabilities();

    /** What is wrong with {@code key} for this type, as messages prefixed with {@code keys.<k>}. */
    List<String> keyProblems(KeySpec key);

    /**
     * What an issuer type's credentials can do: revoked early, renewed in place; and the JWT-SVID
     * audience it logs in with (empty: it needs no workload identity).
     */
    record Capabilities(boolean revocable, boolean renewable, Optional<String> audience) {
    }

    /** Vault/OpenBao's OpenAI engine: JWT login with the workload's SVID, a dynamic key per lease. */
    record Vault(String name, Config.Vault connection, String audience) implements IssuerSpec {
        @Override
        public String type() {
            return "vault";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(true, true, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            List<String> out = new ArrayList<>();
            if (key.vault().isEmpty()) {
                out.add("keys." + key.name() + ": 'vault' is required for a key of issuer '" + name
                        + "' (type vault)");
            }
            if (!key.params().isEmpty()) {
                out.add("keys." + key.name() + ".params: a key of issuer '" + name + "' (type vault) takes its"
                        + " parameters in 'vault:', not 'params:'");
            }
            return out;
        }
    }

    /**
     * The params of {@code key}: {@code required} must be there, nothing outside {@code required}
     * and {@code optional} may be.
     */
    static List<String> params(KeySpec key, String instance, String type, List<String> required, List<String> optional) {
        List<String> out = new ArrayList<>();
        String where = "keys." + key.name() + ".params";
        for (String r : required) {
            if (!key.params().containsKey(r)) {
                out.add(where + ": '" + r + "' is required for a key of issuer '" + instance + "' (type " + type + ")");
            }
        }
        for (String k : key.params().keySet()) {
            if (!required.contains(k) && !optional.contains(k)) {
                List<String> known = new ArrayList<>(required);
                known.addAll(optional);
                out.add(where + "." + k + ": not a parameter of type " + type + " (known: " + String.join(", ", known) + ")");
            }
        }
        if (key.vault().isPresent()) {
            out.add("keys." + key.name() + ".vault: a key of issuer '" + instance + "' (type " + type + ") takes 'params:',"
                    + " not 'vault:'");
        }
        return out;
    }

    /**
     * OpenAI workload identity federation (RFC 8693 token exchange, JSON): the SVID for
     * {@code audience} and the key's {@code serviceAccountId} give a Bearer access token. Not
     * revocable: served until it expires.
     */
    record OpenAiFederation(String name, java.net.URI url, String identityProviderId, String audience,
                            Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_URL = "https://auth.openai.com/oauth/token";
        public static final String DEFAULT_AUDIENCE = "https://api.openai.com/v1";

        @Override
        public String type() {
            return "openai-federation";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return params(key, name, type(), List.of("serviceAccountId"), List.of());
        }
    }

    /**
     * Anthropic workload identity federation (RFC 7523 jwt-bearer, JSON, two beta headers): the SVID
     * and the key's {@code federationRuleId} and {@code serviceAccountId} (and {@code workspaceId}
     * when the rule spans several) give an {@code sk-ant-oat01-} token. Not revocable.
     */
    record AnthropicFederation(String name, java.net.URI url, String organizationId, String audience,
                               Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_URL = "https://api.anthropic.com/v1/oauth/token";
        public static final String DEFAULT_AUDIENCE = "https://api.anthropic.com";

        @Override
        public String type() {
            return "anthropic-federation";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return params(key, name, type(), List.of("federationRuleId", "serviceAccountId"), List.of("workspaceId"));
        }
    }

    /**
     * Google STS token exchange for Vertex AI: the SVID (audience {@code svidAudience}) for a
     * federated access token of the workload identity pool provider {@code audience}; with the
     * key's {@code serviceAccount}, then impersonation ({@code generateAccessToken}). Not revocable.
     */
    record GcpSts(String name, java.net.URI url, String audience, String svidAudience, String scope,
                  java.net.URI impersonateUrl, Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_URL = "https://sts.googleapis.com/v1/token";
        public static final String DEFAULT_IMPERSONATE_URL = "https://iamcredentials.googleapis.com";
        public static final String DEFAULT_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

        @Override
        public String type() {
            return "gcp-sts";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(svidAudience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return params(key, name, type(), List.of(), List.of("serviceAccount"));
        }
    }

    /**
     * Microsoft Entra (Azure OpenAI): client credentials with the SVID as {@code client_assertion}
     * (audience {@code api://AzureADTokenExchange}, RS256 only), for the app registration of the
     * key's {@code clientId}. Not revocable.
     */
    record AzureEntra(String name, java.net.URI url, String scope, String audience, Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_SCOPE = "https://cognitiveservices.azure.com/.default";
        public static final String DEFAULT_AUDIENCE = "api://AzureADTokenExchange";

        @Override
        public String type() {
            return "azure-entra";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return params(key, name, type(), List.of("clientId"), List.of());
        }
    }

    /**
     * AWS Bedrock: STS AssumeRoleWithWebIdentity with the SVID (audience {@code audience}) for the
     * key's {@code roleArn}, then a short-term Bedrock API key presigned locally with the session
     * credentials. Not revocable.
     */
    record AwsSts(String name, java.net.URI url, String region, String audience, Duration duration, Duration timeout,
                  String output) implements IssuerSpec {
        /** {@code api_key} holds a Bedrock API key. */
        public static final String BEDROCK_API_KEY = "bedrock-api-key";
        /** {@code api_key} holds the session credentials as the JSON of an AWS {@code credential_process}. */
        public static final String CREDENTIAL_PROCESS = "credential-process";

        public static final String DEFAULT_URL = "https://sts.amazonaws.com/";
        public static final String DEFAULT_AUDIENCE = "sts.amazonaws.com";

        @Override
        public String type() {
            return "aws-sts";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            List<String> out = params(key, name, type(), List.of("roleArn"), List.of());
            String arn = key.params().get("roleArn");
            if (arn != null && !arn.contains("{") && !arn.matches("arn:aws[a-z-]*:iam::\\d{12}:role/[\\w+=,.@/-]{1,512}")) {
                out.add("keys." + key.name() + ".params.roleArn '" + arn + "' is not an IAM role ARN"
                        + " (arn:aws:iam::123456789012:role/NAME)");
            }
            return out;
        }
    }

    /**
     * OpenRouter federation (enterprise plans): token exchange, form-encoded, for the key's
     * {@code federationPolicyId}; tokens live at most 15 minutes. Not revocable.
     */
    record OpenRouterFederation(String name, java.net.URI url, String audience, Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_URL = "https://openrouter.ai/api/v1/oauth/token";
        public static final String DEFAULT_AUDIENCE = "https://openrouter.ai";

        @Override
        public String type() {
            return "openrouter-federation";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return params(key, name, type(), List.of("federationPolicyId"), List.of());
        }
    }

    /**
     * Okta client credentials for internal gateways that accept Okta tokens: one Okta service app
     * per workload ({@code clientId}) authenticating with {@code private_key_jwt} signed with the
     * key of {@code signingKeyFiles} (the first signs; all are published in the JWKS on
     * {@code ops.listen} and by {@code keywarden jwks}). Not revocable.
     */
    record OktaClientCredentials(String name, java.net.URI url, String scope, Duration timeout,
                                 java.util.List<java.nio.file.Path> signingKeyFiles) implements IssuerSpec {
        @Override
        public String type() {
            return "okta-client-credentials";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.empty());
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return params(key, name, type(), List.of("clientId"), List.of());
        }
    }

    /**
     * OpenRouter provisioned keys: a key per lease through the management API, with a spend
     * {@code limit} (USD), {@code limitReset} and an {@code expires_at} of {@code ttl}; deleted on
     * revoke. Revocable; needs no workload identity at the provider.
     */
    record OpenRouterKeys(String name, java.net.URI url, java.nio.file.Path managementKeyFile, Duration ttl,
                          Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_URL = "https://openrouter.ai/api/v1";

        @Override
        public String type() {
            return "openrouter-keys";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(true, false, Optional.empty());
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            List<String> out = params(key, name, type(), List.of(), List.of("limit", "limitReset"));
            String limit = key.params().get("limit");
            if (limit != null && !limit.matches("\\d{1,9}(\\.\\d{1,2})?")) {
                out.add("keys." + key.name() + ".params.limit '" + limit + "' must be an amount in USD, e.g. 5 or 2.50");
            }
            String reset = key.params().get("limitReset");
            if (reset != null && !List.of("daily", "weekly", "monthly").contains(reset)) {
                out.add("keys." + key.name() + ".params.limitReset '" + reset + "' must be daily, weekly or monthly");
            }
            return out;
        }
    }

    /**
     * The dev issuer: {@code sk-dev-} keys with a fixed TTL, nothing external. It stands in for any
     * type under {@code keywarden dev}, so it accepts (and ignores) every key's parameters.
     */
    record Dev(String name, Duration ttl) implements IssuerSpec {
        public static final Duration DEFAULT_TTL = Duration.ofMinutes(5);

        @Override
        public String type() {
            return "dev";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(true, false, Optional.empty());
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return List.of();
        }
    }
}
