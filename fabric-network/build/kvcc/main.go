// kvcc is a minimal chaincode-as-a-service server used only by the network tests
// (tests/network/40-deploy.sh, 60-limits.sh) to exercise `network.sh deploy` and the
// channel's limits independently of the Rust chaincode. Functions: ping -> "pong";
// put KEY VALUE; get KEY; fill KEY BYTES (a value of BYTES bytes);
// fail MESSAGE -> an error response with MESSAGE; build -> the build label set
// with -ldflags "-X main.build=LABEL" (so a test can tell an upgrade happened).
// Configuration comes from the environment `network.sh deploy` sets:
// CHAINCODE_SERVER_ADDRESS, CHAINCODE_ID, CHAINCODE_TLS_CERT, CHAINCODE_TLS_KEY,
// optional CHAINCODE_CLIENT_CA_CERT.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"strconv"

	"github.com/hyperledger/fabric-chaincode-go/shim"
	pb "github.com/hyperledger/fabric-protos-go/peer"
)

var build = "dev"

// maxFill bounds the value `fill` writes (16 MiB, above every transaction limit of the network).
const maxFill = 16 << 20

type kv struct{}

func (kv) Init(shim.ChaincodeStubInterface) pb.Response { return shim.Success(nil) }

func (kv) Invoke(stub shim.ChaincodeStubInterface) pb.Response {
	fn, args := stub.GetFunctionAndParameters()
	switch {
	case fn == "ping":
		return shim.Success([]byte("pong"))
	case fn == "build":
		return shim.Success([]byte(build))
	case fn == "put" && len(args) == 2:
		if err := stub.PutState(args[0], []byte(args[1])); err != nil {
			return shim.Error(err.Error())
		}
		return shim.Success(nil)
	case fn == "get" && len(args) == 1:
		v, err := stub.GetState(args[0])
		if err != nil {
			return shim.Error(err.Error())
		}
		return shim.Success(v)
	case fn == "fill" && len(args) == 2:
		// fill KEY BYTES: writes a value of BYTES bytes, to build a transaction of a chosen size.
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 || n > maxFill {
			return shim.Error(fmt.Sprintf("fill: BYTES must be 1 to %d, got %q", maxFill, args[1]))
		}
		if err := stub.PutState(args[0], bytes.Repeat([]byte{'x'}, n)); err != nil {
			return shim.Error(err.Error())
		}
		return shim.Success([]byte(strconv.Itoa(n)))
	case fn == "fail" && len(args) == 1:
		return shim.Error(args[0])
	}
	return shim.Error(fmt.Sprintf("unknown function %q with %d argument(s)", fn, len(args)))
}

func readFile(envName string, required bool) []byte {
	path := os.Getenv(envName)
	if path == "" {
		if required {
			log.Fatalf("%s is not set", envName)
		}
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatalf("%s: %v", envName, err)
	}
	return b
}

func main() {
	server := &shim.ChaincodeServer{
		CCID:    os.Getenv("CHAINCODE_ID"),
		Address: os.Getenv("CHAINCODE_SERVER_ADDRESS"),
		CC:      kv{},
		TLSProps: shim.TLSProperties{
			Key:           readFile("CHAINCODE_TLS_KEY", true),
			Cert:          readFile("CHAINCODE_TLS_CERT", true),
			ClientCACerts: readFile("CHAINCODE_CLIENT_CA_CERT", false),
		},
	}
	if server.CCID == "" || server.Address == "" {
		log.Fatal("CHAINCODE_ID and CHAINCODE_SERVER_ADDRESS must be set")
	}
	log.Printf("kvcc: serving %s on %s", server.CCID, server.Address)
	if err := server.Start(); err != nil {
		log.Fatalf("kvcc: %v", err)
	}
}
