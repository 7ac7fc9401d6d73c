#!/usr/bin/env bash
# Starts a single-node Kafka (KRaft) whose clients must authenticate with SASL/SCRAM-SHA-512 and
# are authorised by ACLs. The SCRAM users (one per Paywire service, and an admin) are written into
# the metadata log when the storage is formatted, from passwords in the environment: none has a
# default. The controller listener stays inside the container.
set -euo pipefail
: "${KAFKA_ADMIN_PASSWORD:?}" "${KAFKA_GATEWAY_PASSWORD:?}" "${KAFKA_PAYMENT_CORE_PASSWORD:?}"
: "${KAFKA_WEBHOOK_DISPATCHER_PASSWORD:?}" "${KAFKA_RECOVERY_SCHEDULER_PASSWORD:?}"
CONFIG=/tmp/server.properties
cat >"$CONFIG" <<PROPERTIES
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@localhost:9093
listeners=SASL_PLAINTEXT://:9092,CONTROLLER://localhost:9093
advertised.listeners=SASL_PLAINTEXT://kafka:9092
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:ANONYMOUS
log.dirs=/var/lib/kafka/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
auto.create.topics.enable=false
PROPERTIES
# User:ANONYMOUS above is the controller's own plaintext loopback listener, not a client.
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  /opt/kafka/bin/kafka-storage.sh format --config "$CONFIG" --cluster-id "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${KAFKA_ADMIN_PASSWORD}]" \
    --add-scram "SCRAM-SHA-512=[name=gateway,password=${KAFKA_GATEWAY_PASSWORD}]" \
    --add-scram "SCRAM-SHA-512=[name=payment-core,password=${KAFKA_PAYMENT_CORE_PASSWORD}]" \
    --add-scram "SCRAM-SHA-512=[name=webhook-dispatcher,password=${KAFKA_WEBHOOK_DISPATCHER_PASSWORD}]" \
    --add-scram "SCRAM-SHA-512=[name=recovery-scheduler,password=${KAFKA_RECOVERY_SCHEDULER_PASSWORD}]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
