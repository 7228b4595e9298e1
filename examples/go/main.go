// A Go client of the identity graph's gRPC API: recognise a web visitor, start a conversation on
// web chat, and resume it by SMS from the phone number the visitor typed. Stubs are generated
// from the protos by scripts/go_example.sh (protoc-gen-go and protoc-gen-go-grpc from the Go
// module proxy). Run against a server on loopback:
//
//	bash scripts/go_example.sh && .gotools/bin/identity-go-example -addr 127.0.0.1:50051
//
// It prints one JSON object per step and exits non-zero when the server does not behave as the
// domain rules say (the SMS must resume the web conversation with its state).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	identityv1 "identitygraph/gen/go/identity/v1"
	sessionv1 "identitygraph/gen/go/session/v1"
)

func id(typ, value string) *identityv1.Identifier {
	return &identityv1.Identifier{Type: typ, Value: value}
}

func emit(step string, fields map[string]any) {
	fields["step"] = step
	out, _ := json.Marshal(fields)
	fmt.Println(string(out))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "identity-go-example: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "identity-server address (host:port)")
	suffix := flag.String("suffix", "go1", "makes the example's identifiers unique per run")
	flag.Parse()

	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail("connect: %v", err)
	}
	defer conn.Close()
	identity := identityv1.NewIdentityServiceClient(conn)
	sessions := sessionv1.NewSessionServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cookie := id("web_cookie", "ck-"+*suffix)
	email := id("email", "Ana."+*suffix+"@Example.com")
	phone := id("phone", "(415) 555-0188")

	// 1. Resolve: the web visitor's cookie with the email she typed (an observed link).
	resolved, err := identity.Resolve(ctx, &identityv1.ResolveRequest{
		Channel:     "web",
		Identifiers: []*identityv1.Identifier{cookie, email},
		Attributes:  map[string]string{"first_name": "Ana"},
		Source:      "go-example",
	})
	if err != nil {
		fail("Resolve: %v", err)
	}
	emit("resolve", map[string]any{
		"customer_id": resolved.GetCustomerId(), "is_new": resolved.GetIsNew(),
		"email": resolved.GetIdentifiers()[1].GetValue(),
	})

	// 2. StartOrResume on web chat, then a turn and a half-done order flow.
	web, err := sessions.StartOrResume(ctx, &sessionv1.StartOrResumeRequest{
		Channel: "web", Identifiers: []*identityv1.Identifier{cookie},
	})
	if err != nil {
		fail("StartOrResume(web): %v", err)
	}
	conv := web.GetConversation()
	webCaller := &sessionv1.Caller{Channel: "web", Identifier: cookie}
	if _, err := sessions.AppendTurn(ctx, &sessionv1.AppendTurnRequest{
		ConversationId: conv.GetConversationId(), Caller: webCaller, Role: sessionv1.Role_ROLE_CUSTOMER,
		Text: "Does the FR-200 fit a 70 cm niche?",
	}); err != nil {
		fail("AppendTurn: %v", err)
	}
	data, _ := structpb.NewStruct(map[string]any{"model": "FR-200", "qty": 1})
	updated, err := sessions.UpdateState(ctx, &sessionv1.UpdateStateRequest{
		ConversationId: conv.GetConversationId(), Caller: webCaller, ExpectedVersion: conv.GetVersion(),
		State: &sessionv1.State{Flow: "order", Step: "choose_delivery", Data: data},
	})
	if err != nil {
		fail("UpdateState: %v", err)
	}
	emit("web", map[string]any{
		"conversation_id": conv.GetConversationId(), "customer_id": web.GetCustomerId(),
		"resumed": web.GetResumed(), "version": updated.GetConversation().GetVersion(),
	})

	// The visitor types her phone number into the web form: held cookie, claimed phone.
	if _, err := sessions.StartOrResume(ctx, &sessionv1.StartOrResumeRequest{
		Channel: "web", Identifiers: []*identityv1.Identifier{cookie, phone},
	}); err != nil {
		fail("StartOrResume(web, phone): %v", err)
	}

	// 3. An SMS from that phone: it holds what the web visitor claimed, so it resumes.
	sms, err := sessions.StartOrResume(ctx, &sessionv1.StartOrResumeRequest{
		Channel: "sms", Identifiers: []*identityv1.Identifier{id("phone", "+1 415 555 0188")},
	})
	if err != nil {
		fail("StartOrResume(sms): %v", err)
	}
	got := sms.GetConversation()
	emit("sms", map[string]any{
		"conversation_id": got.GetConversationId(), "customer_id": sms.GetCustomerId(),
		"resumed": sms.GetResumed(), "resumed_from_channel": sms.GetResumedFromChannel(),
		"flow": got.GetState().GetFlow(), "state_step": got.GetState().GetStep(),
		"assurance": sms.GetAssurance().String(),
	})
	switch {
	case !sms.GetResumed() || got.GetConversationId() != conv.GetConversationId():
		fail("the SMS did not resume the web conversation %s", conv.GetConversationId())
	case got.GetState().GetFlow() != "order" || got.GetState().GetStep() != "choose_delivery":
		fail("the order flow did not come along: %v", got.GetState())
	case sms.GetCustomerId() != resolved.GetCustomerId():
		fail("SMS customer %s is not the web customer %s", sms.GetCustomerId(), resolved.GetCustomerId())
	}
}
