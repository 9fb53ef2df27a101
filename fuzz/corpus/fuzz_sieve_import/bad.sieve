if header :is "Subject" "x" {
  fileinto "A"
}
