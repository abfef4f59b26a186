// Package harness plays Envoy's part for llmproc's end-to-end tests on
// machines without an Envoy binary. Start takes a real Envoy bootstrap (a
// go-control-plane Bootstrap, e.g. rendered by `llmproc envoy-config` and
// read with LoadBootstrapYAML) and serves its first static listener over
// HTTP/1.1, or the listener it receives over ADS (below), running what the
// config asks for:
//
//   - the HCM's ext_proc filters as gRPC clients of
//     envoy.service.ext_proc.v3.ExternalProcessor/Process, one lazy stream
//     per request, following envoy-ext-proc-brief.md §8 (modes, message
//     order, attributes, metadata, mutations and their rules, immediate
//     responses, timers, failure handling, mode_override, clear_route_cache,
//     dynamic metadata);
//   - route matching (prefix/path/safe_regex, header matchers, direct
//     responses), re-matched after an honoured clear_route_cache;
//   - the HCM's request header policy (internal.go): hop-by-hop headers and
//     the client's x-envoy-internal removed, Envoy's x-envoy-* control
//     headers removed from external requests, x-forwarded-for and
//     x-envoy-external-address with use_remote_address;
//   - the router: cluster, route timeout and idle_timeout, retry_policy with
//     back-off (rate-limited back-off from a SECONDS reset header jittered
//     1×–1.5×), previous_priorities, priority spill-over, outlier ejection
//     (consecutive 5xx and gateway failures, success rate, failure
//     percentage) and the per-try timeout from the attempt's start;
//   - circuit breakers (breakers.go): max_connections, max_pending_requests,
//     max_requests, max_retries and retry_budget of the DEFAULT priority,
//     Envoy's defaults without circuit_breakers; a refused retry passes the
//     upstream's response on with flag UO, a refused stream is a 503 UO
//     local reply, and an ext_proc cluster's max_requests bounds its gRPC
//     streams (a refused one fails as UNAVAILABLE);
//   - the cluster's upstream ext_proc filters, a new stream per attempt,
//     with xds.upstream_host_metadata, xds.cluster_name and upstream.address
//     attributes; every attempt works on the one request-header map, so it
//     sees what earlier attempts' filters set and removed (source/common/
//     router/upstream_request.cc decodes *parent_.downstreamHeaders() for
//     each), and on a fresh copy of the buffered body; the body goes upstream
//     framed by the content-length header the filters left (a shorter one
//     cuts it, a longer one leaves the upstream waiting);
//   - the HCM's tracing with the OpenTelemetry tracer (tracing.go): Envoy's
//     ingress span per request, a span per ext_proc stream injected into
//     the stream's gRPC metadata as traceparent and tracestate, a span per
//     attempt with spawn_upstream_span, exported over OTLP to the
//     collector cluster;
//   - local_reply_config mappers, access_log and the router's upstream_log;
//     their filters: status code, response flags, headers, and/or, and the
//     CEL extension filter over request.path/url_path/method/host/headers
//     and response.code/code_details/headers (cel.go; other attributes are
//     refused at Start).
//
// Configuration it does not implement makes Start fail, so a test cannot
// pass by accident against settings the harness ignores.
//
// Options.EnvoyVersion (default DefaultEnvoyVersion, 1.37) selects the
// release whose version-dependent behaviour the harness follows: before
// 1.37 an upstream ext_proc filter's local replies (immediate responses
// and its own failures) are dropped and the attempt stalls until a
// timeout, and a route's request_body_buffer_limit bounds only the
// router; before 1.36 request_body_buffer_limit, and before 1.38
// allow_content_length_header, is an unknown field (Start fails).
//
// # ADS
//
// A bootstrap with dynamic_resources (as `llmproc envoy-config -ads`
// renders) is served the way Envoy boots from it: ads_config must be GRPC
// (state of the world, transport V3) to one envoy_grpc static HTTP/2
// cluster, lds_config and cds_config {ads: {}, resource_api_version: V3},
// and the node must have an id and a cluster. Start opens
// StreamAggregatedResources to that cluster and subscribes to CDS, then,
// once clusters are in, to LDS, then to the RDS route configurations the
// listener's HCM names (over ADS). Each response is ACKed (version_info
// and response_nonce of the response) or NACKed (the version last
// accepted, the response's nonce, error_detail code INTERNAL with the
// reason); the node goes on the first request of a stream only with
// set_node_on_first_message_only. The resources are folded into a static
// bootstrap (envoy.Inline) and compiled like one, except that
// validate_clusters defaults to false for routes from RDS, as in Envoy.
// Start returns once clusters, listener and routes have arrived and
// compiled; a NACK before that, or nothing complete within 15s (Envoy's
// initial_fetch_timeout), makes it fail.
//
// Updates after Start are applied live: every response that completes a
// configuration is compiled into a new plan that new requests use, while
// requests in flight finish on the plan they started with. Clusters whose
// config is unchanged keep their state (outlier ejections, connections).
// A broken stream is reopened with Envoy's jittered back-off (0.5 s to
// 30 s), resending each subscription with the version accepted. Counters:
// cluster_manager.cds.update_success / update_rejected,
// listener_manager.lds.update_success / update_rejected and
// http.<hcm stat_prefix>.rds.<route config>.update_success /
// update_rejected.
//
// # Simplifications
//
// What remains simplified, and why llmproc's outcomes cannot depend on it:
//
//   - The downstream request body is read in full before the filters run
//     (each read becomes one chunk), and the upstream request is sent once
//     the filters are done with it. Trailers are never sent. llmproc
//     buffers request bodies (BUFFERED) in both roles, so Envoy too holds
//     the request until the processor has answered for the whole body, and
//     LLM APIs use no request trailers.
//   - Local replies (Envoy's and ext_proc immediate responses, including an
//     upstream filter's, which local_reply_config maps as Envoy does) go to
//     the client without passing back through the downstream ext_proc
//     filters' response path. llmproc's router role skips response
//     processing (response_header_mode SKIP, body NONE), so Envoy sends it
//     nothing for a local reply either.
//   - Host choice: the first priority level with a healthy, non-ejected host
//     (round-robin within it); no overprovisioning-factor split of traffic
//     between a partly ejected level and the next, and a STRICT_DNS name is
//     one host (Envoy makes one per resolved address). llmproc gives each
//     pool member its own priority level, so the split can only move part
//     of a member's traffic to the next member, which is the fallback
//     llmproc already serves on every attempt. With no healthy host
//     anywhere, any host of the first level (panic mode).
//   - Outlier detection runs when outcomes arrive, not on the interval
//     timer: success-rate and failure-percentage ejections are evaluated on
//     the first outcome after each interval, and ejected hosts return once
//     base_ejection_time × ejections has passed. This changes when a host
//     is ejected or returns by less than an interval, not whether.
//   - Circuit breakers: connections are counted as one per active HTTP/1
//     request (Go's transport pools them itself), which is what Envoy's
//     HTTP/1 pool holds too; HTTP/2 clusters multiplex, so only
//     max_requests applies to them, as in Envoy.
//   - An upstream filter sees the downstream :authority; auto_host_rewrite
//     applies after the filters, overriding what they set (Envoy's
//     onPoolReady for a new connection). With a reused connection Envoy
//     rewrites first, so llmproc must not depend on either order.
//   - BUFFERED_PARTIAL, FULL_DUPLEX_STREAMED, observability mode and
//     send_body_without_waiting_for_header_response are rejected at Start.
//   - ADS: exactly one listener (static or from LDS) is served, and an
//     update may not change its address (NACKed); a listener update
//     applies to new requests at once rather than draining connections. A
//     listener is checked when it arrives; until the route configurations
//     it names arrive, it and any cluster update wait (Envoy would apply
//     the clusters). No delta xDS, EDS, other xDS sources,
//     initial_fetch_timeout or rate limit settings (Start fails); a CDS
//     cluster named like a static one is skipped, as Envoy does.
//
// # Dynamic metadata
//
// Both downstream and upstream ext_proc filters write to the downstream
// stream info, which the HCM access_log sees: in Envoy the upstream filter
// manager's streamInfo() is the router's downstream one (source/common/
// router/upstream_request.cc, UpstreamFilterManager). Keys written on every
// attempt therefore hold the last attempt's values. The router's
// upstream_log formats each attempt's own stream info, which carries no
// filter metadata; %UPSTREAM_METADATA% (endpoint metadata) works there.
//
// # Counters
//
// Counters returns these names (Envoy's where Envoy has them). <p> is the
// ext_proc filter's stat_prefix, appended without a dot as Envoy does
// (stat_prefix "router" gives http.llm.ext_proc.routerstreams_started):
//
//	http.<hcm stat_prefix>.ext_proc.<p><counter>  downstream ext_proc filters
//	cluster.<c>ext_proc.<p><counter>               upstream ext_proc filters (the
//	                                               cluster scope's name, no dot)
//
// with <counter> one of streams_started, stream_msgs_sent,
// stream_msgs_received, spurious_msgs_received, streams_failed,
// failure_mode_allowed, message_timeouts, rejected_header_mutations,
// clear_route_cache_ignored, clear_route_cache_disabled,
// clear_route_cache_upstream_ignored; and
//
//	cluster.<c>.upstream_rq_total           attempts
//	cluster.<c>.upstream_rq_<code>          attempts answered with <code>
//	cluster.<c>.upstream_rq_retry           retries
//	cluster.<c>.upstream_rq_retry_limit_exceeded / upstream_rq_retry_overflow
//	cluster.<c>.upstream_rq_pending_overflow  streams refused by max_requests /
//	                                        max_pending_requests (also for an
//	                                        ext_proc cluster's gRPC streams)
//	cluster.<c>.upstream_rq_retry_backoff_ratelimited / _exponential
//	cluster.<c>.upstream_rq_timeout / upstream_rq_per_try_timeout
//	cluster.<c>.upstream_cx_connect_fail / upstream_rq_rx_reset
//	cluster.<c>.upstream_cx_none_healthy / lb_healthy_panic
//	cluster.<c>.outlier_detection.ejections_enforced_total / ejections_overflow
//	http.<hcm stat_prefix>.downstream_rq_total / downstream_rq_<N>xx / no_route
package harness
