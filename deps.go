//go:build deps

// Temporary: pins the dependencies while the packages that use them are written.
package main

import (
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/google/uuid"
	_ "github.com/gorilla/websocket"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/sethvargo/go-envconfig"
	_ "github.com/slack-go/slack"
	_ "github.com/slack-go/slack/socketmode"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/oauth2/clientcredentials"
	_ "golang.org/x/oauth2/google"
	_ "golang.org/x/time/rate"
	_ "gopkg.in/yaml.v3"
)
