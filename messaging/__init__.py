"""What every Kafka adapter shares: topic names from the settings, the embedded broker, topic
creation and the topic metadata kafka-python keeps to itself. Above the application core, below
the projections that read topics and the consumers and producers."""
