package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const secretType = "openai_service_account_key"

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
		Secrets: []*framework.Secret{{
			Type: secretType,
			Fields: map[string]*framework.FieldSchema{
				"api_key": {Type: framework.TypeString, Description: "the service account's API key"},
			},
			Revoke: b.revokeKey,
		}},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

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
}

func (b *backend) pathConfig() *framework.Path {
	return &framework.Path{
		Pattern: "config",
		Fields: map[string]*framework.FieldSchema{
			"admin_api_key":    {Type: framework.TypeString, Description: "OpenAI Admin API key", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
			"admin_api_key_id": {Type: framework.TypeString, Description: "its id"},
			"organization_id":  {Type: framework.TypeString, Description: "OpenAI organization id"},
			"api_endpoint":     {Type: framework.TypeString, Default: "https://api.openai.com/v1", Description: "Admin API base URL"},
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
	c.APIEndpoint = strings.TrimRight(d.Get("api_endpoint").(string), "/")
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
			"name":       {Type: framework.TypeString, Description: "role name"},
			"project_id": {Type: framework.TypeString, Description: "OpenAI project of the service accounts"},
			"ttl":        {Type: framework.TypeDurationSecond, Description: "default lease TTL"},
			"max_ttl":    {Type: framework.TypeDurationSecond, Description: "maximum lease TTL"},
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
	return r, e.DecodeJSON(r)
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
	if r.ProjectID == "" {
		return logical.ErrorResponse("project_id is required"), nil
	}
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return logical.ErrorResponse("ttl must not exceed max_ttl"), nil
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
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, e.Error.Message)
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

func (b *backend) issue(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return logical.ErrorResponse("unknown role " + name), nil
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
	ttl := r.TTL
	if v, ok := d.GetOk("ttl"); ok && v.(int) > 0 {
		ttl = time.Duration(v.(int)) * time.Second
	}
	if r.MaxTTL > 0 && ttl > r.MaxTTL {
		ttl = r.MaxTTL
	}
	// The key dies at OpenAI a minute after its lease, even if the revoke is lost (and an organisation
	// or project with a maximum key lifetime requires the field).
	keyTTL := ttl
	if keyTTL <= 0 {
		keyTTL = b.System().DefaultLeaseTTL()
	}
	body := map[string]interface{}{"name": fmt.Sprintf("vault-%s-%d", name, time.Now().UnixNano())}
	if keyTTL > 0 {
		body["expires_in_seconds"] = int64(keyTTL/time.Second) + 60
	}
	if err := b.adminCall(ctx, c, http.MethodPost, "/organization/projects/"+r.ProjectID+"/service_accounts",
		body, &created); err != nil {
		return nil, err
	}
	if created.ID == "" || created.APIKey.Value == "" {
		return nil, fmt.Errorf("the Admin API answered no service account or key")
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
	resp := b.Secret(secretType).Response(data, map[string]interface{}{
		"service_account_id": created.ID,
		"project_id":         r.ProjectID,
	})
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = r.MaxTTL
	resp.Secret.Renewable = false
	return resp, nil
}

// revokeKey deletes the service account, which kills its key at OpenAI.
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
	if err != nil && strings.Contains(err.Error(), "HTTP 404") {
		return nil, nil // already gone: revoked
	}
	return nil, err
}
