"""The steps of the answer path; ``bot.answer.pipeline.ANSWER_STEPS`` lists them in order."""
