# Build: docker build -t keywarden .
# The base images are build arguments; their defaults are the public images. Without a registry,
# deploy/docker/build-images.sh builds stand-ins for them from Debian (debootstrap + docker import,
# the JRE from Debian's packages) and builds this file with them and with the jar the host built:
#   docker build --build-arg RUNTIME_IMAGE=keywarden-local/jre:17 --build-arg JAR_STAGE=prebuilt \
#     -f Dockerfile -t keywarden:dev <context holding daemon/target/keywarden.jar>
# (BuildKit: only the stages the target needs are built.)
ARG BUILD_IMAGE=eclipse-temurin:17-jdk
ARG RUNTIME_IMAGE=eclipse-temurin:21-jre
# build: Maven builds the jar in the image; prebuilt: the jar comes from the build context.
ARG JAR_STAGE=build

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY .mvn/ .mvn/
COPY mvnw pom.xml ./
COPY native/pom.xml native/
COPY policies/pom.xml policies/
COPY attestation/pom.xml attestation/
COPY delivery/pom.xml delivery/
COPY testkit/pom.xml testkit/
COPY issuers/pom.xml issuers/
COPY daemon/pom.xml daemon/
COPY tests/pom.xml tests/
RUN ./mvnw -B -q dependency:go-offline -DexcludeArtifactIds=keywarden-native,keywarden-policies,keywarden-attestation,keywarden-delivery,keywarden-testkit,keywarden-issuers,keywarden-daemon || true
COPY . .
RUN ./mvnw -B -q -pl daemon -am package -DskipTests

FROM scratch AS prebuilt
COPY daemon/target/keywarden.jar /src/daemon/target/keywarden.jar

FROM ${JAR_STAGE} AS jar

FROM ${RUNTIME_IMAGE}
# The FUSE mount needs CAP_SYS_ADMIN and /dev/fuse: the DaemonSet runs this image as root with
# those privileges. In tmpfs delivery mode without a mount it can run as the unprivileged user.
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin keywarden \
 && mkdir -p /run/keywarden /var/log/keywarden /etc/keywarden
COPY --from=jar /src/daemon/target/keywarden.jar /opt/keywarden/keywarden.jar
COPY --chmod=0755 deploy/bin/keywarden deploy/bin/keywarden-cds /usr/local/bin/
# The class-data sharing archive, made where the jar stays (the JVM checks its path): CLI calls
# (kubectl exec … keywarden status) start in ~0.2 s.
RUN keywarden-cds /opt/keywarden/keywarden.jar
COPY deploy/examples/policy.yaml /etc/keywarden/policy.yaml
ENV KEYWARDEN_LOG_FORMAT=json \
    JAVA_OPTS="-Xmx160m -XX:+UseSerialGC"
EXPOSE 9464
ENTRYPOINT ["keywarden"]
CMD ["run", "--config", "/etc/keywarden/config.yaml"]
