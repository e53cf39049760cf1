// Command limbo-go runs Go's crypto/x509 on an x509-limbo suite (limbo.json) and prints the
// verdicts as JSON in x509-limbo's result format, for bench/limbo.py --go-harness.
//
// Usage: limbo-go LIMBO.json > results.json  (or limbo-go < LIMBO.json)
//
// crypto/x509 is configured exactly as x509-limbo's own Go harness configures it
// (harness/gocryptox509/main.go of https://github.com/C2SP/x509-limbo, read at commit
// 8a2e6f41023b1716dc16fe63335e4bb972e4c3f6; this is a rewrite on the standard library only, not
// a copy): the trusted certificates as Roots, the untrusted intermediates as Intermediates, the
// testcase's validation_time (else the current time) as CurrentTime, its extended key usages as
// KeyUsages (none: crypto/x509's default, serverAuth), and the expected DNS peer name as DNSName
// (any other kind as "[value]", which crypto/x509 reads as an IP address). Skipped, as there:
// the features max-chain-depth and has-crl, a max_chain_depth, signature_algorithms, a key_usage
// list without digitalSignature, and CLIENT testcases. expected_peer_names is not read, as there.
//
// Three differences from that harness, none of which changes a verdict of a well-formed suite:
// "context" is the crypto/x509 error of every refusal (there, only of verdicts that differ from
// the expected one); a peer certificate that is not one PEM CERTIFICATE block is a FAILURE with
// a reason (there, a missing block dereferences a nil pointer); an extended key usage that
// x509-limbo does not know is skipped (there, the generated schema refuses the whole file).
package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
)

type peerName struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// testcase holds the fields of an x509-limbo Testcase this harness reads.
type testcase struct {
	ID                     string    `json:"id"`
	Features               []string  `json:"features"`
	ValidationKind         string    `json:"validation_kind"`
	TrustedCerts           []string  `json:"trusted_certs"`
	UntrustedIntermediates []string  `json:"untrusted_intermediates"`
	PeerCertificate        string    `json:"peer_certificate"`
	ValidationTime         *string   `json:"validation_time"`
	SignatureAlgorithms    []string  `json:"signature_algorithms"`
	KeyUsage               []string  `json:"key_usage"`
	ExtendedKeyUsage       []string  `json:"extended_key_usage"`
	ExpectedResult         string    `json:"expected_result"`
	ExpectedPeerName       *peerName `json:"expected_peer_name"`
	MaxChainDepth          *int      `json:"max_chain_depth"`
}

type limbo struct {
	Version   int        `json:"version"`
	Testcases []testcase `json:"testcases"`
}

type result struct {
	ID      string `json:"id"`
	Result  string `json:"actual_result"`
	Context string `json:"context"`
}

type results struct {
	Version uint     `json:"version"`
	Harness string   `json:"harness"`
	Results []result `json:"results"`
}

var ekuByName = map[string]x509.ExtKeyUsage{
	"anyExtendedKeyUsage": x509.ExtKeyUsageAny,
	"clientAuth":          x509.ExtKeyUsageClientAuth,
	"codeSigning":         x509.ExtKeyUsageCodeSigning,
	"emailProtection":     x509.ExtKeyUsageEmailProtection,
	"OCSPSigning":         x509.ExtKeyUsageOCSPSigning,
	"serverAuth":          x509.ExtKeyUsageServerAuth,
	"timeStamping":        x509.ExtKeyUsageTimeStamping,
}

func concatPEMs(pems []string) []byte {
	var buf bytes.Buffer
	for _, p := range pems {
		buf.WriteString(p)
	}
	return buf.Bytes()
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// evaluate returns SUCCESS, FAILURE or SKIPPED and the reason (the crypto/x509 error, the skip).
func evaluate(tc testcase) (string, string) {
	for _, f := range tc.Features {
		if f == "max-chain-depth" {
			return "SKIPPED", "max chain depth not supported"
		}
		if f == "has-crl" {
			return "SKIPPED", "CRLs not supported"
		}
	}
	now := time.Now()
	if tc.ValidationTime != nil {
		t, err := time.Parse(time.RFC3339, *tc.ValidationTime)
		if err != nil {
			return "SKIPPED", "unable to parse testcase time as RFC3339: " + err.Error()
		}
		now = t
	}
	if len(tc.SignatureAlgorithms) != 0 {
		return "SKIPPED", "signature algorithm checks not supported yet"
	}
	if len(tc.KeyUsage) != 0 && !contains(tc.KeyUsage, "digitalSignature") {
		return "SKIPPED", "key usage checks not supported yet"
	}
	if tc.MaxChainDepth != nil {
		return "SKIPPED", "max chain depth not supported"
	}
	var ekus []x509.ExtKeyUsage
	for _, name := range tc.ExtendedKeyUsage {
		eku, ok := ekuByName[name]
		if !ok {
			return "SKIPPED", "extended key usage " + name + " is unknown to x509-limbo"
		}
		ekus = append(ekus, eku)
	}
	if tc.ValidationKind != "SERVER" {
		return "SKIPPED", "unimplemented validation kind " + tc.ValidationKind
	}
	var dnsName string
	if tc.ExpectedPeerName != nil {
		if tc.ExpectedPeerName.Kind == "DNS" {
			dnsName = tc.ExpectedPeerName.Value
		} else {
			dnsName = "[" + tc.ExpectedPeerName.Value + "]"
		}
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM(concatPEMs(tc.TrustedCerts))
	intermediates.AppendCertsFromPEM(concatPEMs(tc.UntrustedIntermediates))

	block, rest := pem.Decode([]byte(tc.PeerCertificate))
	if block == nil || block.Type != "CERTIFICATE" {
		return "FAILURE", "peer certificate is not a PEM CERTIFICATE block"
	}
	if len(rest) > 0 {
		return "FAILURE", fmt.Sprintf("peer certificate has %d trailing bytes", len(rest))
	}
	peer, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "FAILURE", "unable to parse ASN1 certificate from PEM: " + err.Error()
	}
	_, err = peer.Verify(x509.VerifyOptions{
		DNSName:       dnsName,
		Intermediates: intermediates,
		Roots:         roots,
		CurrentTime:   now,
		KeyUsages:     ekus,
	})
	if err != nil {
		return "FAILURE", err.Error()
	}
	return "SUCCESS", ""
}

func main() {
	var in io.Reader = os.Stdin
	if len(os.Args) == 2 {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	} else if len(os.Args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: limbo-go [LIMBO.json] > results.json")
		os.Exit(2)
	}
	data, err := io.ReadAll(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var suite limbo
	if err := json.Unmarshal(data, &suite); err != nil {
		fmt.Fprintln(os.Stderr, "limbo.json:", err)
		os.Exit(2)
	}
	out := results{Version: 1, Harness: "gocryptox509-" + runtime.Version()}
	for _, tc := range suite.Testcases {
		r, why := evaluate(tc)
		out.Results = append(out.Results, result{ID: tc.ID, Result: r, Context: why})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
