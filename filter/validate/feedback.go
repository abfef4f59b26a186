package validate

// Feedback validates the body of llmproc's own POST /v1/feedback:
// {"request_id": string, "score": integer 1 to 5, "label": string?,
// "comment": string?}. Unlike the providers' APIs, whose fields grow, an
// unknown member is refused: it is a typo of one of four.
func Feedback(body []byte, o Options) error {
	return runBody(body, o, false, (*parser).feedback)
}

// FeedbackScoreMin and FeedbackScoreMax bound a feedback score: 1 (worst)
// to 5 (best), whole numbers. Every score is positive, so the score
// histogram's _sum only grows and rate() reads it as the counter it is.
const (
	FeedbackScoreMin = 1
	FeedbackScoreMax = 5
)

func (p *parser) feedback(top func(string, []byte)) {
	const (
		hasID seen = 1 << iota
		hasScore
	)
	var s seen
	p.body(top, func(k string) {
		switch k {
		case "request_id":
			s.add(hasID)
			p.str(nonEmpty)
		case "score":
			s.add(hasScore)
			p.integer(0, FeedbackScoreMin, FeedbackScoreMax)
		case "label", "comment":
			p.str(nullable)
		default:
			p.fail("unknown_parameter", "unknown parameter; feedback takes request_id, score, label and comment")
		}
	})
	switch {
	case p.err != nil:
	case !s.has(hasID):
		p.missing("request_id")
	case !s.has(hasScore):
		p.missing("score")
	}
}
