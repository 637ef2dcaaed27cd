package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/warden-sec/warden/sessions"
	"github.com/warden-sec/warden/sessions/auth0"
	"github.com/warden-sec/warden/sessions/demo"
	"github.com/warden-sec/warden/sessions/entra"
	"github.com/warden-sec/warden/sessions/google"
	"github.com/warden-sec/warden/sessions/keycloak"
	"github.com/warden-sec/warden/sessions/kratos"
	"github.com/warden-sec/warden/sessions/okta"
	"github.com/warden-sec/warden/sessions/slackgrid"
	"github.com/warden-sec/warden/storage"
)

// buildProviders constructs the connectors named in WARDEN_PROVIDERS, in
// that order. Missing credentials are configuration errors naming the
// variable. Connectors send their HTTP requests through hc (nil: their
// default client).
func buildProviders(cfg config, db *storage.DB, hc *http.Client, log *slog.Logger) ([]sessions.Provider, error) {
	var out []sessions.Provider
	for _, name := range cfg.Providers {
		p, err := buildProvider(name, cfg, db, hc, log)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func buildProvider(name string, cfg config, db *storage.DB, hc *http.Client, log *slog.Logger) (sessions.Provider, error) {
	switch name {
	case "demo":
		return demo.New(demo.Config{Store: db})
	case "kratos":
		if err := requireURL("KRATOS_ADMIN_URL", cfg.Kratos.AdminURL); err != nil {
			return nil, err
		}
		return kratos.New(kratos.Config{AdminURL: cfg.Kratos.AdminURL, Token: cfg.Kratos.Token.value(), HTTP: hc, Logger: log})
	case "okta":
		if err := requireURL("OKTA_ORG_URL", cfg.Okta.OrgURL); err != nil {
			return nil, err
		}
		if err := required("OKTA_API_TOKEN", cfg.Okta.APIToken.value()); err != nil {
			return nil, err
		}
		return okta.New(okta.Config{OrgURL: cfg.Okta.OrgURL, APIToken: cfg.Okta.APIToken.value(), HTTP: hc, Logger: log})
	case "auth0":
		if err := requireURL("AUTH0_URL", cfg.Auth0.URL); err != nil {
			return nil, err
		}
		if err := required("AUTH0_CLIENT_ID", cfg.Auth0.ClientID); err != nil {
			return nil, err
		}
		if err := required("AUTH0_CLIENT_SECRET", cfg.Auth0.ClientSecret.value()); err != nil {
			return nil, err
		}
		return auth0.New(auth0.Config{URL: cfg.Auth0.URL, ClientID: cfg.Auth0.ClientID, ClientSecret: cfg.Auth0.ClientSecret.value(), HTTP: hc, Logger: log})
	case "keycloak":
		if err := requireURL("KEYCLOAK_URL", cfg.Keycloak.URL); err != nil {
			return nil, err
		}
		for _, v := range [][2]string{{"KEYCLOAK_REALM", cfg.Keycloak.Realm}, {"KEYCLOAK_CLIENT_ID", cfg.Keycloak.ClientID}, {"KEYCLOAK_CLIENT_SECRET", cfg.Keycloak.ClientSecret.value()}} {
			if err := required(v[0], v[1]); err != nil {
				return nil, err
			}
		}
		return keycloak.New(keycloak.Config{URL: cfg.Keycloak.URL, Realm: cfg.Keycloak.Realm, ClientID: cfg.Keycloak.ClientID,
			ClientSecret: cfg.Keycloak.ClientSecret.value(), HTTP: hc, Logger: log})
	case "slack":
		if err := required("SLACK_ADMIN_TOKEN", cfg.SlackAdmin.Token.value()); err != nil {
			return nil, err
		}
		api := cfg.SlackAdmin.APIURL
		if api == "" {
			api = cfg.SlackAPIURL
		} else if err := checkURL("SLACK_ADMIN_API_URL", api); err != nil {
			return nil, err
		}
		p, err := slackgrid.New(slackgrid.Config{APIURL: api, AdminToken: cfg.SlackAdmin.Token.value(), HTTP: hc, Logger: log})
		if err != nil {
			return nil, &configError{"SLACK_ADMIN_TOKEN", "must be an Enterprise Grid admin user token (xoxp-…)"}
		}
		return p, nil
	case "google":
		if err := required("GOOGLE_CREDENTIALS", cfg.Google.Credentials.value()); err != nil {
			return nil, err
		}
		if err := required("GOOGLE_ADMIN_EMAIL", cfg.Google.AdminEmail); err != nil {
			return nil, err
		}
		for _, v := range [][2]string{{"GOOGLE_API_URL", cfg.Google.APIURL}, {"GOOGLE_TOKEN_URL", cfg.Google.TokenURL}} {
			if v[1] != "" {
				if err := checkURL(v[0], v[1]); err != nil {
					return nil, err
				}
			}
		}
		p, err := google.New(google.Config{BaseURL: cfg.Google.APIURL, CredentialsJSON: []byte(cfg.Google.Credentials.value()),
			AdminEmail: cfg.Google.AdminEmail, TokenURL: cfg.Google.TokenURL, HTTP: hc, Logger: log})
		if err != nil {
			return nil, &configError{"GOOGLE_CREDENTIALS", "must be a service-account key (JSON)"}
		}
		return p, nil
	case "entra":
		for _, v := range [][2]string{{"ENTRA_TENANT_ID", cfg.Entra.TenantID}, {"ENTRA_CLIENT_ID", cfg.Entra.ClientID}, {"ENTRA_CLIENT_SECRET", cfg.Entra.ClientSecret.value()}} {
			if err := required(v[0], v[1]); err != nil {
				return nil, err
			}
		}
		for _, v := range [][2]string{{"ENTRA_GRAPH_URL", cfg.Entra.GraphURL}, {"ENTRA_TOKEN_URL", cfg.Entra.TokenURL}} {
			if v[1] != "" {
				if err := checkURL(v[0], v[1]); err != nil {
					return nil, err
				}
			}
		}
		return entra.New(entra.Config{GraphURL: cfg.Entra.GraphURL, TokenURL: cfg.Entra.TokenURL, TenantID: cfg.Entra.TenantID,
			ClientID: cfg.Entra.ClientID, ClientSecret: cfg.Entra.ClientSecret.value(), HTTP: hc, Logger: log})
	default:
		return nil, &configError{"WARDEN_PROVIDERS", fmt.Sprintf("provider %s is not available in this build", name)}
	}
}

// requireURL checks a provider's base URL: present, and http(s).
func requireURL(name, v string) error {
	if err := required(name, v); err != nil {
		return err
	}
	return checkURL(name, v)
}
