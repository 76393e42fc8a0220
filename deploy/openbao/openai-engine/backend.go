package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// secretType is the community engine's secret type, so that a lease this engine issues can be
// revoked by that engine after a plugin switch (and the other way round); legacySecretType is the
// type earlier releases of this engine issued, still revocable here.
const (
	secretType       = "openai_api_key"
	legacySecretType = "openai_service_account_key"
	// defaultKeyExpiryMargin: how long a key outlives its lease at OpenAI unless the role says otherwise.
	defaultKeyExpiryMargin = 60 * time.Second
	defaultRoleTTL         = time.Hour
	defaultRoleMaxTTL      = 24 * time.Hour
)

type backend struct {
	*framework.Backend
	client *http.Client
}

// Factory builds the engine; OpenBao calls it once per mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &backend{client: &http.Client{Timeout: 30 * time.Second}}
	b.Backend = &framework.Backend{
		Help:         "Dynamic OpenAI project service account keys.",
		BackendType:  logical.TypeLogical,
		PathsSpecial: &logical.Paths{SealWrapStorage: []string{"config"}},
		Paths: []*framework.Path{
			b.pathConfig(),
			b.pathRoles(),
			b.pathRoleList(),
			b.pathCreds(),
		},
		Secrets: []*framework.Secret{b.secret(secretType), b.secret(legacySecretType)},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *backend) secret(kind string) *framework.Secret {
	return &framework.Secret{
		Type: kind,
		Fields: map[string]*framework.FieldSchema{
			"api_key":            {Type: framework.TypeString, Description: "the service account's API key"},
			"api_key_id":         {Type: framework.TypeString, Description: "its id at OpenAI"},
			"service_account_id": {Type: framework.TypeString, Description: "the service account's id"},
			"service_account":    {Type: framework.TypeString, Description: "the service account's name"},
		},
		Revoke: b.revokeKey,
	}
}

const defaultAPIEndpoint = "https://api.openai.com/v1"

type config struct {
	AdminAPIKey    string `json:"admin_api_key"`
	AdminAPIKeyID  string `json:"admin_api_key_id"`
	OrganizationID string `json:"organization_id"`
	APIEndpoint    string `json:"api_endpoint"`
}

type role struct {
	ProjectID string        `json:"project_id"`
	TTL       time.Duration `json:"ttl"`
	MaxTTL    time.Duration `json:"max_ttl"`
	// KeyExpiryMargin: how long the key outlives its lease at OpenAI (0: the default minute).
	KeyExpiryMargin time.Duration `json:"key_expiry_margin,omitempty"`
	// MaxKeyLifetime: the organisation's or project's maximum key lifetime, when it sets one (0: none).
	MaxKeyLifetime time.Duration `json:"max_key_lifetime,omitempty"`
}

func (b *backend) pathConfig() *framework.Path {
	return &framework.Path{
		Pattern: "config",
		Fields: map[string]*framework.FieldSchema{
			"admin_api_key":    {Type: framework.TypeString, Description: "OpenAI Admin API key", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
			"admin_api_key_id": {Type: framework.TypeString, Description: "its id"},
			"organization_id":  {Type: framework.TypeString, Description: "OpenAI organization id"},
			"api_endpoint":     {Type: framework.TypeString, Default: defaultAPIEndpoint, Description: "Admin API base URL"},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.writeConfig},
			logical.CreateOperation: &framework.PathOperation{Callback: b.writeConfig},
			logical.ReadOperation:   &framework.PathOperation{Callback: b.readConfig},
		},
		ExistenceCheck: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
			c, err := loadConfig(ctx, req.Storage)
			return c != nil, err
		},
	}
}

func loadConfig(ctx context.Context, s logical.Storage) (*config, error) {
	e, err := s.Get(ctx, "config")
	if err != nil || e == nil {
		return nil, err
	}
	c := &config{}
	return c, e.DecodeJSON(c)
}

func (b *backend) writeConfig(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	c, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = &config{}
	}
	if v, ok := d.GetOk("admin_api_key"); ok {
		c.AdminAPIKey = v.(string)
	}
	if v, ok := d.GetOk("admin_api_key_id"); ok {
		c.AdminAPIKeyID = v.(string)
	}
	if v, ok := d.GetOk("organization_id"); ok {
		c.OrganizationID = v.(string)
	}
	// A write that omits a field keeps what was stored (as the community engine does).
	if v, ok := d.GetOk("api_endpoint"); ok {
		c.APIEndpoint = strings.TrimRight(v.(string), "/")
	}
	if c.APIEndpoint == "" {
		c.APIEndpoint = defaultAPIEndpoint
	}
	if c.AdminAPIKey == "" || c.OrganizationID == "" {
		return logical.ErrorResponse("admin_api_key and organization_id are required"), nil
	}
	e, err := logical.StorageEntryJSON("config", c)
	if err != nil {
		return nil, err
	}
	return nil, req.Storage.Put(ctx, e)
}

func (b *backend) readConfig(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	c, err := loadConfig(ctx, req.Storage)
	if err != nil || c == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		"admin_api_key_id": c.AdminAPIKeyID, "organization_id": c.OrganizationID, "api_endpoint": c.APIEndpoint,
	}}, nil
}

func (b *backend) pathRoles() *framework.Path {
	return &framework.Path{
		Pattern: "roles/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name":              {Type: framework.TypeString, Description: "role name"},
			"project_id":        {Type: framework.TypeString, Description: "OpenAI project of the service accounts"},
			"ttl":               {Type: framework.TypeDurationSecond, Default: int(defaultRoleTTL / time.Second), Description: "default lease TTL (1h)"},
			"max_ttl":           {Type: framework.TypeDurationSecond, Default: int(defaultRoleMaxTTL / time.Second), Description: "maximum lease TTL (24h)"},
			"key_expiry_margin": {Type: framework.TypeDurationSecond, Description: "how long a key outlives its lease at OpenAI (default 60s)"},
			"max_key_lifetime":  {Type: framework.TypeDurationSecond, Description: "the organisation's or project's maximum API key lifetime, if it sets one"},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.writeRole},
			logical.CreateOperation: &framework.PathOperation{Callback: b.writeRole},
			logical.ReadOperation:   &framework.PathOperation{Callback: b.readRole},
			logical.DeleteOperation: &framework.PathOperation{Callback: b.deleteRole},
		},
		ExistenceCheck: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
			r, err := loadRole(ctx, req.Storage, d.Get("name").(string))
			return r != nil, err
		},
	}
}

func (b *backend) pathRoleList() *framework.Path {
	return &framework.Path{
		Pattern: "roles/?$",
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: &framework.PathOperation{Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
				names, err := req.Storage.List(ctx, "roles/")
				if err != nil {
					return nil, err
				}
				return logical.ListResponse(names), nil
			}},
		},
	}
}

func loadRole(ctx context.Context, s logical.Storage, name string) (*role, error) {
	e, err := s.Get(ctx, "roles/"+name)
	if err != nil || e == nil {
		return nil, err
	}
	r := &role{}
	if err := e.DecodeJSON(r); err != nil {
		return nil, err
	}
	// Roles written by earlier releases may hold no TTLs: the defaults a role gets today.
	if r.TTL <= 0 {
		r.TTL = defaultRoleTTL
	}
	if r.MaxTTL <= 0 {
		r.MaxTTL = defaultRoleMaxTTL
	}
	return r, nil
}

func (b *backend) writeRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &role{}
	}
	if v, ok := d.GetOk("project_id"); ok {
		r.ProjectID = v.(string)
	}
	if v, ok := d.GetOk("ttl"); ok {
		r.TTL = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("max_ttl"); ok {
		r.MaxTTL = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("key_expiry_margin"); ok {
		r.KeyExpiryMargin = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("max_key_lifetime"); ok {
		r.MaxKeyLifetime = time.Duration(v.(int)) * time.Second
	}
	// The community engine's defaults for a role that names none: 1 h, at most 24 h.
	if r.TTL <= 0 {
		r.TTL = defaultRoleTTL
	}
	if r.MaxTTL <= 0 {
		r.MaxTTL = defaultRoleMaxTTL
	}
	if r.ProjectID == "" {
		return logical.ErrorResponse("project_id is required"), nil
	}
	if r.TTL > r.MaxTTL {
		return logical.ErrorResponse("ttl must not exceed max_ttl"), nil
	}
	if r.KeyExpiryMargin < 0 || r.MaxKeyLifetime < 0 {
		return logical.ErrorResponse("key_expiry_margin and max_key_lifetime must not be negative"), nil
	}
	c, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return logical.ErrorResponse("write openai/config first"), nil
	}
	// As the community engine does: the project must exist and be active.
	if err := b.checkProject(ctx, c, r.ProjectID); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	e, err := logical.StorageEntryJSON("roles/"+name, r)
	if err != nil {
		return nil, err
	}
	return nil, req.Storage.Put(ctx, e)
}

func (b *backend) readRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := loadRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil || r == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		"project_id": r.ProjectID, "ttl": int64(r.TTL.Seconds()), "max_ttl": int64(r.MaxTTL.Seconds()),
		"key_expiry_margin": int64(r.keyExpiryMargin().Seconds()), "max_key_lifetime": int64(r.MaxKeyLifetime.Seconds()),
	}}, nil
}

func (b *backend) deleteRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, req.Storage.Delete(ctx, "roles/"+d.Get("name").(string))
}

func (b *backend) pathCreds() *framework.Path {
	return &framework.Path{
		Pattern: "creds/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "role name"},
			"ttl":  {Type: framework.TypeDurationSecond, Description: "requested lease TTL (at most the role's max_ttl)"},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.issue},
		},
	}
}

// apiError is an Admin API answer of status 400 or more.
type apiError struct {
	method, path string
	status       int
	message      string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.path, e.status, e.message)
}

// adminCall sends one Admin API request the way the community engine does and decodes the answer.
func (b *backend) adminCall(ctx context.Context, c *config, method, path string, body interface{}, out interface{}) error {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.APIEndpoint+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminAPIKey)
	req.Header.Set("OpenAI-Beta", "project-service-accounts=v1")
	req.Header.Set("OpenAI-Organization", c.OrganizationID)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return &apiError{method: method, path: path, status: resp.StatusCode, message: e.Error.Message}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (b *backend) checkProject(ctx context.Context, c *config, project string) error {
	var p struct {
		Status string `json:"status"`
	}
	if err := b.adminCall(ctx, c, http.MethodGet, "/organization/projects/"+project, nil, &p); err != nil {
		return err
	}
	if p.Status != "active" {
		return fmt.Errorf("project %s is %q, not active", project, p.Status)
	}
	return nil
}

func (r *role) keyExpiryMargin() time.Duration {
	if r.KeyExpiryMargin > 0 {
		return r.KeyExpiryMargin
	}
	return defaultKeyExpiryMargin
}

// leaseTTL is the lease's TTL for a read that asked for requested (0: none). As the community engine
// does, a request outside the role's range falls back to the role's ttl; unlike it, a request equal
// to max_ttl is honoured. The warning says when the request was not.
func (r *role) leaseTTL(requested time.Duration) (time.Duration, string) {
	if requested <= 0 {
		return r.TTL, ""
	}
	if r.MaxTTL > 0 && requested > r.MaxTTL {
		return r.TTL, fmt.Sprintf("the requested ttl %s exceeds the role's max_ttl %s: the role's ttl %s was used",
			requested, r.MaxTTL, r.TTL)
	}
	return requested, ""
}

// keyLifetime is what the key is asked to live at OpenAI for a lease of ttl: the lease plus the
// role's margin, capped by the provider's maximum; the warning says when the cap made the key die
// before its lease.
func (r *role) keyLifetime(ttl time.Duration) (time.Duration, string) {
	life := ttl + r.keyExpiryMargin()
	if r.MaxKeyLifetime > 0 && life > r.MaxKeyLifetime {
		return r.MaxKeyLifetime, fmt.Sprintf("the key lives %s at OpenAI (max_key_lifetime), less than its lease %s"+
			" plus the margin: it dies at api_key_expires_at", r.MaxKeyLifetime, ttl)
	}
	return life, ""
}

func (b *backend) issue(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return logical.ErrorResponse(fmt.Sprintf("role %q does not exist", name)), nil
	}
	c, err := loadConfig(ctx, req.Storage)
	if err != nil || c == nil {
		return logical.ErrorResponse("the engine is not configured"), err
	}
	if err := b.checkProject(ctx, c, r.ProjectID); err != nil {
		return nil, err
	}
	var created struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		APIKey struct {
			ID        string `json:"id"`
			Value     string `json:"value"`
			ExpiresAt int64  `json:"expires_at"`
		} `json:"api_key"`
	}
	requested := time.Duration(0)
	if v, ok := d.GetOk("ttl"); ok {
		requested = time.Duration(v.(int)) * time.Second
	}
	ttl, ttlWarning := r.leaseTTL(requested)
	// The key dies at OpenAI shortly after its lease even if the revoke is lost (and an organisation or
	// project with a maximum key lifetime requires the field).
	life, lifeWarning := r.keyLifetime(ttl)
	body := map[string]interface{}{
		"name":               fmt.Sprintf("vault-%s-%d", name, time.Now().UnixNano()),
		"expires_in_seconds": int64(life / time.Second),
	}
	if err := b.adminCall(ctx, c, http.MethodPost, "/organization/projects/"+r.ProjectID+"/service_accounts",
		body, &created); err != nil {
		return nil, err
	}
	if created.ID == "" || created.APIKey.Value == "" || created.APIKey.ID == "" {
		return nil, fmt.Errorf("the Admin API answered no service account, key or key id")
	}
	data := map[string]interface{}{
		"api_key":            created.APIKey.Value,
		"api_key_id":         created.APIKey.ID,
		"service_account_id": created.ID,
		"service_account":    created.Name,
	}
	if created.APIKey.ExpiresAt > 0 {
		data["api_key_expires_at"] = created.APIKey.ExpiresAt
	}
	// The community engine's internal data, so that either engine can revoke the lease.
	resp := b.Secret(secretType).Response(data, map[string]interface{}{
		"api_key_id":         created.APIKey.ID,
		"service_account_id": created.ID,
		"project_id":         r.ProjectID,
	})
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = r.MaxTTL
	resp.Secret.Renewable = false
	for _, w := range []string{ttlWarning, lifeWarning} {
		if w != "" {
			resp.AddWarning(w)
		}
	}
	return resp, nil
}

// revokeKey deletes the service account, which kills its key at OpenAI. It accepts the internal data
// of this engine's earlier releases ({service_account_id, project_id}) and of the community engine
// (the same plus api_key_id, whose bookkeeping entry it removes too). A service account that is
// already gone (404) counts as revoked: revocation is idempotent, unlike the community engine,
// whose revoke then fails (and OpenBao keeps retrying a lease that can never succeed).
func (b *backend) revokeKey(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	sa, _ := req.Secret.InternalData["service_account_id"].(string)
	project, _ := req.Secret.InternalData["project_id"].(string)
	if sa == "" || project == "" {
		return nil, fmt.Errorf("lease has no service account to delete")
	}
	c, err := loadConfig(ctx, req.Storage)
	if err != nil || c == nil {
		return nil, fmt.Errorf("the engine is not configured")
	}
	err = b.adminCall(ctx, c, http.MethodDelete, "/organization/projects/"+project+"/service_accounts/"+sa, nil, nil)
	var apiErr *apiError
	if err != nil && !(errors.As(err, &apiErr) && apiErr.status == http.StatusNotFound) {
		return nil, err
	}
	if keyID, _ := req.Secret.InternalData["api_key_id"].(string); keyID != "" {
		if err := req.Storage.Delete(ctx, "api_keys/"+keyID); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
