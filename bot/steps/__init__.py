"""The steps of the answer path; ``bot.pipeline.ANSWER_STEPS`` lists them in order."""
