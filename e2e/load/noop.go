package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
)

// noop is the floor: an ext_proc server that answers every message with an
// empty CONTINUE reply of the matching type and parses nothing. What llmproc
// costs above it is llmproc's own work; the rest is gRPC and protobuf.
type noop struct {
	extprocv3.UnimplementedExternalProcessorServer
	replies [6]*extprocv3.ProcessingResponse
}

func newNoop() *noop {
	n := &noop{}
	n.replies = [6]*extprocv3.ProcessingResponse{
		{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}},
		{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}},
		{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}},
		{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}},
		{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}},
		{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}},
	}
	return n
}

// Process answers each message in order. The replies are shared, never
// modified, so concurrent marshalling is safe.
func (n *noop) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var i int
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			i = 0
		case *extprocv3.ProcessingRequest_RequestBody:
			i = 1
		case *extprocv3.ProcessingRequest_RequestTrailers:
			i = 2
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			i = 3
		case *extprocv3.ProcessingRequest_ResponseBody:
			i = 4
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			i = 5
		default:
			return fmt.Errorf("unknown ext_proc request %T", req.GetRequest())
		}
		if err := s.Send(n.replies[i]); err != nil {
			return err
		}
	}
}

// grpcServer builds a gRPC server with llmproc's options: message limits of
// the request body limit plus 1 MiB for framing (as filter/server sets them).
func grpcServer(maxRequestBytes int64) *grpc.Server {
	lim := int(maxRequestBytes) + 1<<20
	return grpc.NewServer(grpc.MaxRecvMsgSize(lim), grpc.MaxSendMsgSize(lim))
}

// serveNoop runs the noop server on addr until ctx ends.
func serveNoop(ctx context.Context, addr string, maxRequestBytes int64) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	gs := grpcServer(maxRequestBytes)
	extprocv3.RegisterExternalProcessorServer(gs, newNoop())
	go func() {
		<-ctx.Done()
		gs.Stop()
	}()
	return gs.Serve(lis)
}
