// keywarden-openai-engine: an OpenBao/Vault secrets engine that issues OpenAI project service
// account keys as dynamic secrets, API-compatible with the community engine
// (vault-plugin-secrets-openai): the same paths (config, roles/<name>, creds/<name>), fields and
// Admin API calls. keywarden ships it because that engine cannot be fetched from the Go module
// proxy and, under OpenBao, fails on the rotation-job calls OpenBao's host does not implement.
//
//	bao plugin register -sha256=<sum> secret keywarden-openai-engine
//	bao secrets enable -path=openai keywarden-openai-engine
package main

import (
	"log"
	"os"

	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{BackendFactoryFunc: Factory}); err != nil {
		log.Println("keywarden-openai-engine:", err)
		os.Exit(1)
	}
}
