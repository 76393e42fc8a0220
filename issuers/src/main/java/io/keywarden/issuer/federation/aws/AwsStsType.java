package io.keywarden.issuer.federation.aws;

import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerBlock;
import io.keywarden.issuer.IssuerContext;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerType;
import io.keywarden.policy.Durations;
import io.keywarden.policy.KeySpec;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * {@code type: aws-sts}: AWS Bedrock. STS AssumeRoleWithWebIdentity with the SVID (audience
 * {@code audience}) for the key's {@code roleArn}, then a short-term Bedrock API key presigned
 * locally with the session credentials (or the session credentials themselves, as an AWS
 * {@code credential_process} JSON). Not revocable.
 */
public final class AwsStsType implements IssuerType<AwsStsType.Spec> {

    /** The settings of one instance. */
    public record Spec(String name, URI url, String region, String audience, Duration duration, Duration timeout,
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
            List<String> out = IssuerSpec.params(key, name, type(), List.of("roleArn"), List.of());
            String arn = key.params().get("roleArn");
            if (arn != null && !arn.contains("{") && !arn.matches("arn:aws[a-z-]*:iam::\\d{12}:role/[\\w+=,.@/-]{1,512}")) {
                out.add("keys." + key.name() + ".params.roleArn '" + arn + "' is not an IAM role ARN"
                        + " (arn:aws:iam::123456789012:role/NAME)");
            }
            return out;
        }
    }

    @Override
    public String type() {
        return "aws-sts";
    }

    @Override
    public Class<Spec> specClass() {
        return Spec.class;
    }

    @Override
    public Spec parse(IssuerBlock b) {
        String region = b.nonEmpty("region", "us-east-1");
        if (region != null && !region.matches("[a-z]{2}(-gov)?-[a-z]+-\\d")) {
            b.problem(b.where() + ".region '" + region + "' is not an AWS region");
        }
        Duration duration = b.reader().optionalParsed("duration", Durations::parse).orElse(Duration.ofHours(1));
        if (duration.toSeconds() < 900 || duration.toSeconds() > 43200) {
            b.problem(b.where() + ".duration must be between 15m and 12h (STS DurationSeconds)");
        }
        String output = b.reader().optionalString("output").orElse(Spec.BEDROCK_API_KEY);
        if (!output.equals(Spec.BEDROCK_API_KEY) && !output.equals(Spec.CREDENTIAL_PROCESS)) {
            b.problem(b.where() + ".output '" + output + "' is not one of bedrock-api-key | credential-process");
        }
        return new Spec(b.name(), b.url("url", Spec.DEFAULT_URL), region, b.nonEmpty("audience", Spec.DEFAULT_AUDIENCE),
                duration, b.timeout(), output);
    }

    @Override
    public Issuer create(Spec spec, IssuerContext context) {
        return new AwsStsIssuer(spec, context.identity(), context.clock());
    }
}
