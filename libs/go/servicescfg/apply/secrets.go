package apply

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// secretsNode is the inventory entry of the Secrets of spec.secrets.
const secretsNode = "spec.secrets"

// MissingValueError is a fromConfig key whose variable has no value. It
// names the variable, never a value.
type MissingValueError struct {
	Secret, Key, Variable string
}

func (e *MissingValueError) Error() string {
	return fmt.Sprintf("secret %s key %s: variable %s has no value: set it in the stack's config file or export %s", e.Secret, e.Key, e.Variable, config.EnvName(e.Variable))
}

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// applySecrets writes the Secrets of spec.secrets: fromConfig keys from the
// resolved config, generated keys read back from the cluster and only
// generated when absent.
func (e *reconcileRun) applySecrets(ctx context.Context) error {
	if len(e.p.Secrets) == 0 {
		return nil
	}
	ri := e.c.Dynamic.Resource(secretsGVR).Namespace(e.p.Namespace)
	if err := e.checkSecretValues(); err != nil {
		return err
	}
	for _, s := range e.p.Secrets {
		u, live, err := e.secretObject(ctx, ri, s)
		if err != nil {
			return err
		}
		a, _, err := e.applyOver(ctx, secretsNode, ri, u, live)
		if err != nil {
			// applyOne's errors name the object and fields, never data.
			return err
		}
		e.record(secretsNode, refOf(u), a)
	}
	return nil
}

// checkSecretValues fails on the first fromConfig key without a value; run
// before anything is written.
func (e *reconcileRun) checkSecretValues() error {
	for _, s := range e.p.Secrets {
		for _, k := range s.Keys {
			if k.FromConfig == "" {
				continue
			}
			if e.opts.Values == nil {
				return &MissingValueError{Secret: s.Name, Key: k.Key, Variable: k.FromConfig}
			}
			if v, ok := e.opts.Values.Get(k.FromConfig); !ok || v == "" {
				return &MissingValueError{Secret: s.Name, Key: k.Key, Variable: k.FromConfig}
			}
		}
	}
	return nil
}

// secretObject is the Secret s as an apply writes it, and the live one
// (nil when absent).
func (e *reconcileRun) secretObject(ctx context.Context, ri dynamic.ResourceInterface, s plan.Secret) (*unstructured.Unstructured, *unstructured.Unstructured, error) {
	// Read even in a new namespace: a generated value must never be
	// drawn again over one that exists.
	live, err := ri.Get(ctx, s.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return nil, nil, fmt.Errorf("secret %s: read: %w", s.Name, err)
	}
	var existing map[string]any
	if live != nil {
		existing, _, _ = unstructured.NestedMap(live.Object, "data")
	}
	u, err := e.buildSecret(s, existing, true)
	return u, live, err
}

// generatedPlaceholder stands, in a diff, for a value a reconcile would
// generate: the diff masks values, so only its presence shows.
const generatedPlaceholder = "(generated)"

// buildSecret is the Secret of spec.secrets that an apply writes, keeping
// the generated values of existing (the live Secret's data). Without
// generateNew a value still to be generated is a placeholder, so that a
// diff neither draws random values nor logs that it did.
func (e *reconcileRun) buildSecret(s plan.Secret, existing map[string]any, generateNew bool) (*unstructured.Unstructured, error) {
	data := map[string]any{}
	for _, k := range s.Keys {
		var val string
		switch {
		case k.FromConfig != "":
			v, _ := e.opts.Values.Get(k.FromConfig)
			val = base64.StdEncoding.EncodeToString([]byte(v))
		default:
			if old, ok := existing[k.Key].(string); ok && old != "" {
				val = old // generated once, kept
				break
			}
			if !generateNew {
				val = base64.StdEncoding.EncodeToString([]byte(generatedPlaceholder))
				break
			}
			gen, err := generate(k.Generate, k.Charset)
			if err != nil {
				return nil, fmt.Errorf("secret %s key %s: generate: %w", s.Name, k.Key, err)
			}
			e.log.Info("generated secret value", "secret", s.Name, "key", k.Key, "length", k.Generate)
			val = base64.StdEncoding.EncodeToString([]byte(gen))
		}
		data[k.Key] = val
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":      s.Name,
			"namespace": e.p.Namespace,
			"labels":    map[string]any{LabelManagedBy: ManagedBy, LabelNode: secretsNode},
		},
		"type": s.Type,
		"data": data,
	}}
	if s.Type == "" {
		u.Object["type"] = "Opaque"
	}
	return u, nil
}

const (
	alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	hexDigits    = "0123456789abcdef"
	base64Chars  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// generate returns length random characters of the charset (alphanumeric,
// hex or base64) from crypto/rand.
func generate(length int, charset string) (string, error) {
	if length <= 0 {
		length = 32
	}
	chars := alphanumeric
	switch charset {
	case "", "alphanumeric":
	case "hex":
		chars = hexDigits
	case "base64":
		chars = base64Chars
	default:
		return "", fmt.Errorf("unknown charset %q (alphanumeric, hex or base64)", charset)
	}
	out := make([]byte, length)
	max := big.NewInt(int64(len(chars)))
	for i := range out {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		out[i] = chars[n.Int64()]
	}
	return string(out), nil
}
