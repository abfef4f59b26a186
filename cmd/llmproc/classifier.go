package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/llmproc/llmproc/filter/route"
)

// classifier trains the task classifier's model or measures one; the logic
// is in filter/route (TrainCorpus, Evaluate).
func classifier(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("llmproc classifier "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch sub {
	case "train":
		corpus := fs.String("corpus", "filter/route/testdata", "the testdata directory holding corpus/ and classify.jsonl")
		out := fs.String("o", "filter/route/classifier.model", "model file to write")
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		m, err := route.TrainCorpus(*corpus, stdout)
		if err != nil {
			return err
		}
		b, err := m.MarshalBinary()
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", *out, len(b))
		return nil
	case "eval":
		model := fs.String("model", "", "model file (default: the shipped model)")
		misses := fs.Bool("misses", false, "list the misclassified requests")
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		if fs.NArg() == 0 {
			return fmt.Errorf("classifier eval: name a labelled requests file (JSON lines)")
		}
		m := route.ShippedModel()
		if *model != "" {
			b, err := os.ReadFile(*model)
			if err != nil {
				return err
			}
			if m, err = route.ParseModel(b); err != nil {
				return fmt.Errorf("%s: %w", *model, err)
			}
		}
		for _, f := range fs.Args() {
			exs, err := route.ReadExampleFiles(f)
			if err != nil {
				return err
			}
			e, err := route.Evaluate(m, exs)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			e.Format(stdout, f)
			if *misses {
				for _, x := range e.Misses {
					fmt.Fprintf(stdout, "  miss %s: labelled %s, classified %s (%.2f)\n", x.Name, x.Want, x.Got, x.Confidence)
				}
			}
		}
		return nil
	}
	fmt.Fprintf(stderr, "llmproc: unknown classifier command %q\n\n%s", sub, usage)
	return errUsage
}
