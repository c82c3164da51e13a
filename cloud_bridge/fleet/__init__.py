"""The fleet: kiosk identity, telemetry ingestion, commands and the manager's view.

Modules: :mod:`.ca` (kiosk CA, CRL, broker and bridge certificates),
:mod:`.enrollment` (tokens, CSR to certificate, renewal), :mod:`.registry`
(tables of kiosks, telemetry, events and commands), :mod:`.broker_config`
(Mosquitto configuration and ACL), :mod:`.ingest` (MQTT 5 shared-subscription
consumer), :mod:`.commander` (signed commands), :mod:`.web` (pages, JSON
and ``/metrics``), :mod:`.cli` (``kiosk fleet ...``) and :mod:`.bench`.

Clustered brokers: EMQX, VerneMQ and HiveMQ all implement MQTT 5 shared
subscriptions (``$share/bridge/kiosk/+/telemetry``), so any number of bridge
instances, on any cluster node, split the messages between them; each
message goes to one instance, and the database's unique message ids make a
redelivery after a crash harmless. What changes with a cluster is the
authentication plumbing, not this code: the kiosk CA certificate and the CRL
are loaded into each node (EMQX's ``ssl_options`` with ``enable_crl_check``,
VerneMQ's ``listener.ssl.crlfile``, HiveMQ's TLS listener with the CRL in
its trust store), ``peer_cert_as_username = cn`` (EMQX) or
``use_identity_as_username`` (VerneMQ) replaces Mosquitto's option, and the
ACL below becomes the broker's authorization rules with ``${username}`` or
``%u`` placeholders. Retained status messages and session state are
replicated by the cluster.
"""
