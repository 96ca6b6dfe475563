"""Online consultations: triage by versioned rules, the doctors' queue, real-time messages,
prescriptions that become medical requests, chronic refills and Erlang C staffing."""
