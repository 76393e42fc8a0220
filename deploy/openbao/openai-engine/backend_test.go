package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// adminAPI is a small OpenAI Admin API: projects are active, service accounts are created with a
// key (honouring expires_in_seconds) and deleted; deleteStatus, when set, is answered to deletes.
type adminAPI struct {
	mu           sync.Mutex
	created      []map[string]interface{}
	deleted      []string
	accounts     map[string]bool
	deleteStatus int
}

func newAdminAPI(t *testing.T) (*adminAPI, *httptest.Server) {
	a := &adminAPI{accounts: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer admin-key" {
			w.WriteHeader(401)
			return
		}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		switch {
		case r.Method == http.MethodGet && len(parts) == 4:
			_ = json.NewEncoder(w).Encode(map[string]interface{}{"id": parts[3], "status": "active"})
		case r.Method == http.MethodPost && len(parts) == 5:
			var body map[string]interface{}
			_ = json.NewDecoder(r.Body).Decode(&body)
			a.created = append(a.created, body)
			id := "svc_acct_" + string(rune('a'+len(a.created)))
			a.accounts[id] = true
			key := map[string]interface{}{"id": "key_" + id, "value": "sk-test-" + id}
			if s, ok := body["expires_in_seconds"].(float64); ok {
				key["expires_at"] = time.Now().Unix() + int64(s)
			}
			_ = json.NewEncoder(w).Encode(map[string]interface{}{"id": id, "name": body["name"], "api_key": key})
		case r.Method == http.MethodDelete && len(parts) == 6:
			a.deleted = append(a.deleted, parts[5])
			if a.deleteStatus != 0 {
				w.WriteHeader(a.deleteStatus)
				_, _ = w.Write([]byte(`{"error":{"message":"injected"}}`))
				return
			}
			if !a.accounts[parts[5]] {
				w.WriteHeader(404)
				_, _ = w.Write([]byte(`{"error":{"message":"No such service account"}}`))
				return
			}
			delete(a.accounts, parts[5])
			_, _ = w.Write([]byte(`{"deleted":true}`))
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(srv.Close)
	return a, srv
}

type harness struct {
	t       *testing.T
	b       *backend
	storage logical.Storage
}

func newHarness(t *testing.T) *harness {
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	b, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, b: b.(*backend), storage: conf.StorageView}
}

func (h *harness) call(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	h.t.Helper()
	resp, err := h.b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data,
		Storage: h.storage})
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

func (h *harness) configure(endpoint string) {
	h.t.Helper()
	if r := h.call(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": "admin-key",
		"organization_id": "org-1", "api_endpoint": endpoint}); r != nil && r.IsError() {
		h.t.Fatal(r.Error())
	}
}

func (h *harness) revoke(internal map[string]interface{}) error {
	_, err := h.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RevokeOperation,
		Storage: h.storage, Secret: &logical.Secret{InternalData: internal}})
	return err
}

func TestAConfigWriteThatOmitsAFieldKeepsItsStoredValue(t *testing.T) {
	_, srv := newAdminAPI(t)
	h := newHarness(t)
	h.configure(srv.URL + "/v1/")
	h.call(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": "admin-key"})
	r := h.call(logical.ReadOperation, "config", nil)
	if got := r.Data["api_endpoint"]; got != srv.URL+"/v1" {
		t.Fatalf("api_endpoint after a partial write: %v", got)
	}
	if got := r.Data["organization_id"]; got != "org-1" {
		t.Fatalf("organization_id after a partial write: %v", got)
	}
	if _, ok := r.Data["admin_api_key"]; ok {
		t.Fatal("the admin key is never read back")
	}
}

func TestARoleThatNamesNoTtlGetsTheCommunityEnginesDefaults(t *testing.T) {
	_, srv := newAdminAPI(t)
	h := newHarness(t)
	h.configure(srv.URL + "/v1")
	h.call(logical.UpdateOperation, "roles/a", map[string]interface{}{"project_id": "proj_1"})
	r := h.call(logical.ReadOperation, "roles/a", nil)
	if r.Data["ttl"] != int64(3600) || r.Data["max_ttl"] != int64(86400) {
		t.Fatalf("role defaults: %v", r.Data)
	}
	if r := h.call(logical.UpdateOperation, "roles/b", map[string]interface{}{"project_id": "proj_1", "ttl": "2h",
		"max_ttl": "1h"}); r == nil || !r.IsError() {
		t.Fatal("a ttl over max_ttl must be refused")
	}
}

func TestCredsSendAnExpiryAndALeaseOverMaxTtlFallsBackToTheRoleTtl(t *testing.T) {
	api, srv := newAdminAPI(t)
	h := newHarness(t)
	h.configure(srv.URL + "/v1")
	h.call(logical.UpdateOperation, "roles/a", map[string]interface{}{"project_id": "proj_1", "ttl": "10m",
		"max_ttl": "1h"})

	r := h.call(logical.ReadOperation, "creds/a", map[string]interface{}{"ttl": "30m"})
	if r.Secret.TTL != 30*time.Minute || len(r.Warnings) != 0 {
		t.Fatalf("a ttl within range is honoured: %v %v", r.Secret.TTL, r.Warnings)
	}
	if got := api.created[0]["expires_in_seconds"]; got != float64(30*60+60) {
		t.Fatalf("expires_in_seconds = the lease plus a minute: %v", got)
	}
	if r.Data["api_key_expires_at"] == nil || r.Data["api_key_id"] != "key_svc_acct_b" {
		t.Fatalf("the answer carries the key's expiry and id: %v", r.Data["api_key_expires_at"])
	}
	if r.Secret.InternalData["secret_type"] != "openai_api_key" || r.Secret.InternalData["api_key_id"] != "key_svc_acct_b" {
		t.Fatalf("the community engine's secret type and internal data: %v", r.Secret.InternalData)
	}

	r = h.call(logical.ReadOperation, "creds/a", map[string]interface{}{"ttl": "1h"})
	if r.Secret.TTL != time.Hour {
		t.Fatalf("a ttl equal to max_ttl is honoured: %v", r.Secret.TTL)
	}
	r = h.call(logical.ReadOperation, "creds/a", map[string]interface{}{"ttl": "3h"})
	if r.Secret.TTL != 10*time.Minute || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "max_ttl") {
		t.Fatalf("a ttl over max_ttl falls back to the role's, with a warning: %v %v", r.Secret.TTL, r.Warnings)
	}
}

func TestTheProvidersMaximumKeyLifetimeCapsTheKeyAndSaysSo(t *testing.T) {
	api, srv := newAdminAPI(t)
	h := newHarness(t)
	h.configure(srv.URL + "/v1")
	h.call(logical.UpdateOperation, "roles/a", map[string]interface{}{"project_id": "proj_1", "ttl": "1h",
		"max_key_lifetime": "30m", "key_expiry_margin": "5m"})
	r := h.call(logical.ReadOperation, "creds/a", nil)
	if got := api.created[0]["expires_in_seconds"]; got != float64(30*60) {
		t.Fatalf("capped at max_key_lifetime: %v", got)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "api_key_expires_at") {
		t.Fatalf("a warning says the key dies before its lease: %v", r.Warnings)
	}
	h.call(logical.UpdateOperation, "roles/a", map[string]interface{}{"max_key_lifetime": "0"})
	h.call(logical.ReadOperation, "creds/a", nil)
	if got := api.created[1]["expires_in_seconds"]; got != float64(3600+300) {
		t.Fatalf("the role's margin: %v", got)
	}
}

func TestRevokeAcceptsBothEnginesInternalDataAndAGoneServiceAccount(t *testing.T) {
	api, srv := newAdminAPI(t)
	h := newHarness(t)
	h.configure(srv.URL + "/v1")
	h.call(logical.UpdateOperation, "roles/a", map[string]interface{}{"project_id": "proj_1"})
	h.call(logical.ReadOperation, "creds/a", nil) // svc_acct_b
	h.call(logical.ReadOperation, "creds/a", nil) // svc_acct_c
	h.call(logical.ReadOperation, "creds/a", nil) // svc_acct_d

	// The community engine's lease: its type, api_key_id, and its bookkeeping entry under api_keys/.
	entry, _ := logical.StorageEntryJSON("api_keys/key_svc_acct_b", map[string]string{"api_key_id": "key_svc_acct_b"})
	_ = h.storage.Put(context.Background(), entry)
	if err := h.revoke(map[string]interface{}{"secret_type": "openai_api_key", "api_key_id": "key_svc_acct_b",
		"service_account_id": "svc_acct_b", "project_id": "proj_1"}); err != nil {
		t.Fatal(err)
	}
	if e, _ := h.storage.Get(context.Background(), "api_keys/key_svc_acct_b"); e != nil {
		t.Fatal("the community engine's bookkeeping entry is removed with its lease")
	}
	// An earlier release's lease: the legacy type, no api_key_id.
	if err := h.revoke(map[string]interface{}{"secret_type": "openai_service_account_key",
		"service_account_id": "svc_acct_c", "project_id": "proj_1"}); err != nil {
		t.Fatal(err)
	}
	if api.accounts["svc_acct_b"] || api.accounts["svc_acct_c"] {
		t.Fatal("both service accounts deleted")
	}
	// Deleted behind the engine's back: 404 is a revocation, not a failure.
	if err := h.revoke(map[string]interface{}{"secret_type": "openai_api_key", "api_key_id": "key_svc_acct_b",
		"service_account_id": "svc_acct_b", "project_id": "proj_1"}); err != nil {
		t.Fatalf("an already deleted service account counts as revoked: %v", err)
	}
	// A provider failure is a failure (OpenBao keeps the lease and tries again).
	api.deleteStatus = 500
	if err := h.revoke(map[string]interface{}{"secret_type": "openai_api_key", "api_key_id": "key_svc_acct_d",
		"service_account_id": "svc_acct_d", "project_id": "proj_1"}); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("a 500 from the Admin API is a failed revoke: %v", err)
	}
	if err := h.revoke(map[string]interface{}{"secret_type": "openai_api_key", "project_id": "proj_1"}); err == nil {
		t.Fatal("a lease without a service account cannot be revoked")
	}
}
