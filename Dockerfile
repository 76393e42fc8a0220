# syntax=docker/dockerfile:1
# Build: docker build -t keywarden .
FROM eclipse-temurin:17-jdk AS build
WORKDIR /src
COPY .mvn/ .mvn/
COPY mvnw pom.xml ./
COPY native/pom.xml native/
COPY policies/pom.xml policies/
COPY attestation/pom.xml attestation/
COPY delivery/pom.xml delivery/
COPY daemon/pom.xml daemon/
COPY tests/pom.xml tests/
RUN ./mvnw -B -q dependency:go-offline -DexcludeArtifactIds=keywarden-native,keywarden-policies,keywarden-attestation,keywarden-delivery,keywarden-daemon || true
COPY . .
RUN ./mvnw -B -q -pl daemon -am package -DskipTests

FROM eclipse-temurin:21-jre
# The FUSE mount needs CAP_SYS_ADMIN and /dev/fuse: the DaemonSet runs this image as root with
# those privileges. In tmpfs delivery mode without a mount it can run as the unprivileged user.
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin keywarden \
 && mkdir -p /run/keywarden /var/log/keywarden /etc/keywarden
COPY --from=build /src/daemon/target/keywarden.jar /opt/keywarden/keywarden.jar
COPY --chmod=0755 deploy/docker/keywarden /usr/local/bin/keywarden
COPY deploy/examples/policy.yaml /etc/keywarden/policy.yaml
ENV KEYWARDEN_LOG_FORMAT=json \
    JAVA_OPTS="-Xmx160m -XX:+UseSerialGC"
EXPOSE 9464
ENTRYPOINT ["keywarden"]
CMD ["run", "--config", "/etc/keywarden/config.yaml"]
