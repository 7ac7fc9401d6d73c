#!/usr/bin/env bash
# Creates Paywire's topics and gives each service exactly the access it needs, as the admin user.
# Runs once after the broker is up; every step is idempotent. What each service may do:
#   gateway            writes payment and recovery commands and configuration; reads gateway replies (groups gateway-*)
#   payment-core       reads payment commands (group payment-core); writes payment events, replies
#   webhook-dispatcher reads payment and recovery events (group webhook-dispatcher)
#   every other service reads configuration in its own group (above)
#   recovery-scheduler reads payment events and recovery commands (group recovery-scheduler);
#                      writes payment commands and recovery events
#   everyone           writes the dead-letter topic
set -euo pipefail
: "${KAFKA_ADMIN_PASSWORD:?}"
BIN=/opt/kafka/bin
ADMIN=/tmp/admin.properties
cat >"$ADMIN" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD}";
PROPERTIES
SERVER=kafka:9092
PARTITIONS="${KAFKA_TOPIC_PARTITIONS:-6}"
for topic in paywire.payment.commands paywire.payment.events paywire.recovery.commands paywire.recovery.events paywire.webhook.commands paywire.gateway.replies paywire.deadletter; do
  "$BIN/kafka-topics.sh" --bootstrap-server "$SERVER" --command-config "$ADMIN" --create --if-not-exists --topic "$topic" --partitions "$PARTITIONS" --replication-factor 1
done
# Merchants' configurations: compacted, so the latest snapshot of every merchant stays.
"$BIN/kafka-topics.sh" --bootstrap-server "$SERVER" --command-config "$ADMIN" --create --if-not-exists --topic paywire.configuration \
  --partitions "$PARTITIONS" --replication-factor 1 --config cleanup.policy=compact
acl() { "$BIN/kafka-acls.sh" --bootstrap-server "$SERVER" --command-config "$ADMIN" --add --allow-principal "User:$1" "${@:2}"; }
produce() { acl "$1" --operation Write --operation Describe --topic "$2"; }
consume() { acl "$1" --operation Read --operation Describe --topic "$2"; }
group() { acl "$1" --operation Read --group "$2" "${@:3}"; }

produce gateway paywire.payment.commands
produce gateway paywire.recovery.commands
produce gateway paywire.configuration
consume gateway paywire.gateway.replies
group gateway gateway- --resource-pattern-type prefixed

consume payment-core paywire.payment.commands
group payment-core payment-core
produce payment-core paywire.payment.events
produce payment-core paywire.gateway.replies

consume webhook-dispatcher paywire.payment.events
consume webhook-dispatcher paywire.recovery.events
group webhook-dispatcher webhook-dispatcher

consume recovery-scheduler paywire.payment.events
consume recovery-scheduler paywire.recovery.commands
group recovery-scheduler recovery-scheduler
produce recovery-scheduler paywire.payment.commands
produce recovery-scheduler paywire.recovery.events

for service in payment-core webhook-dispatcher recovery-scheduler; do
  consume "$service" paywire.configuration
done

for service in gateway payment-core webhook-dispatcher recovery-scheduler; do
  produce "$service" paywire.deadletter
  # Services check at start that their topics exist (metadata of every topic).
  acl "$service" --operation Describe --topic paywire. --resource-pattern-type prefixed
done
echo "topics and ACLs in place"
