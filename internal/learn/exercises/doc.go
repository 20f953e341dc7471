// Package exercises holds the checks of the chapters' exercises. Each
// ex_NN_K_test.go checks exercise K of chapter NN: `make check-NN-K`
// copies it into the learner's workspace work/NN-name, beside their
// main.go, and runs it there. They are built only with the tag
// learnercheck, so that nothing else compiles them against a step that
// lacks the exercise (the kit's own tests apply the answers of
// lessons/answers.md to the steps and check them that way).
package exercises
